// The egress guard against real servers on loopback. Nothing here may reach any other address: names are
// resolved by an injected resolver, and fetch itself is wrapped so that a bug cannot leave loopback either.
import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import { EgressNetworkError, EgressRefused, EgressTooLarge, createEgress } from "../../src/egress/fetch.ts";

const realFetch = globalThis.fetch;
const offLoopback: string[] = [];
let fetchSpy: ReturnType<typeof spyOn>;
beforeAll(() => {
  fetchSpy = spyOn(globalThis, "fetch").mockImplementation(((input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.hostname !== "127.0.0.1" && url.hostname !== "[::1]") {
      offLoopback.push(url.href);
      return Promise.reject(new Error(`test guard: ${url.href} is not loopback`));
    }
    return realFetch(input, init);
  }) as typeof fetch);
});
afterAll(() => fetchSpy.mockRestore());

interface Hit {
  path: string;
  headers: Headers;
  method: string;
}

function serve(handler: (req: Request) => Response | Promise<Response>, hostname = "127.0.0.1") {
  const hits: Hit[] = [];
  const server = Bun.serve({
    hostname,
    port: 0,
    fetch(req) {
      hits.push({ path: new URL(req.url).pathname, headers: req.headers, method: req.method });
      return handler(req);
    },
  });
  return { hits, port: server.port!, stop: () => server.stop(true) };
}

const limits = { timeoutMs: 2000, maxBytes: 1000, maxRedirects: 3 };
const loopback = ["127.0.0.0/8"];
const resolver = (names: Record<string, string[]>) => {
  const asked: string[] = [];
  const resolve = async (host: string) => {
    asked.push(host);
    const found = names[host];
    if (!found) throw new Error(`no test address for ${host}`);
    return found;
  };
  return { asked, resolve };
};

describe("address check", () => {
  test("an allowed loopback server is fetched", async () => {
    const s = serve(() => new Response("hello", { headers: { "x-test": "1" } }));
    const egress = createEgress({ allow: loopback });
    const r = await egress.fetch(`http://127.0.0.1:${s.port}/a`, limits);
    expect(r.status).toBe(200);
    expect(new TextDecoder().decode(r.body)).toBe("hello");
    expect(r.headers.get("x-test")).toBe("1");
    expect(r.finalUrl).toBe(`http://127.0.0.1:${s.port}/a`);
    expect(s.hits).toHaveLength(1);
    s.stop();
  });

  test("with an empty allow list loopback is refused and never contacted", async () => {
    const s = serve(() => new Response("must not happen"));
    const egress = createEgress({ allow: [] });
    for (const url of [`http://127.0.0.1:${s.port}/`, `http://2130706433:${s.port}/`, `http://0x7f.1:${s.port}/`, `http://127.1:${s.port}/`, `http://[::ffff:127.0.0.1]:${s.port}/`]) {
      expect(() => egress.checkLiteral(url)).toThrow(EgressRefused);
      await expect(egress.checkUrl(url)).rejects.toThrow(EgressRefused);
      await expect(egress.fetch(url, limits)).rejects.toThrow(/is a loopback address/);
    }
    expect(s.hits).toHaveLength(0);
    s.stop();
  });

  test("a name is checked after resolution: public-looking name, loopback address, refused", async () => {
    const s = serve(() => new Response("must not happen"));
    const { asked, resolve } = resolver({ "public.test": ["127.0.0.1"] });
    const egress = createEgress({ allow: [], resolve });
    expect(() => egress.checkLiteral(`http://public.test:${s.port}/`)).not.toThrow();
    await expect(egress.fetch(`http://public.test:${s.port}/`, limits)).rejects.toThrow(
      "public.test resolves to loopback address 127.0.0.1",
    );
    expect(asked).toEqual(["public.test"]);
    expect(s.hits).toHaveLength(0);
    s.stop();
  });

  test("one bad address among several refuses the name", async () => {
    // 8.8.8.8 is only a string here: the refusal comes before any connect (and the guard would block it).
    const { resolve } = resolver({ "mixed.test": ["8.8.8.8", "10.0.0.5"] });
    const egress = createEgress({ allow: [], resolve });
    await expect(egress.checkUrl("http://mixed.test/")).rejects.toThrow("mixed.test resolves to private address 10.0.0.5");
  });

  test("connects to the checked address, with the name in Host; DNS is asked once", async () => {
    const s = serve((req) => new Response(req.headers.get("host")));
    const { asked, resolve } = resolver({ "media.test": ["127.0.0.1"] });
    const egress = createEgress({ allow: loopback, resolve });
    const r = await egress.fetch(`http://media.test:${s.port}/x`, limits);
    expect(new TextDecoder().decode(r.body)).toBe(`media.test:${s.port}`);
    expect(r.finalUrl).toBe(`http://media.test:${s.port}/x`);
    expect(asked).toEqual(["media.test"]);
    s.stop();
  });

  test("of several checked addresses IPv4 is preferred", async () => {
    const s = serve(() => new Response("v4"));
    const { resolve } = resolver({ "dual.test": ["::1", "127.0.0.1"] });
    const egress = createEgress({ allow: ["127.0.0.0/8", "::1/128"], resolve });
    expect(new TextDecoder().decode((await egress.fetch(`http://dual.test:${s.port}/`, limits)).body)).toBe("v4");
    s.stop();
  });

  test("IPv6 loopback, literal and by name", async () => {
    const s = serve((req) => new Response(req.headers.get("host")), "::1");
    const { resolve } = resolver({ "v6.test": ["::1"] });
    const egress = createEgress({ allow: ["::1/128"], resolve });
    expect(new TextDecoder().decode((await egress.fetch(`http://[::1]:${s.port}/`, limits)).body)).toBe(`[::1]:${s.port}`);
    expect(new TextDecoder().decode((await egress.fetch(`http://v6.test:${s.port}/`, limits)).body)).toBe(`v6.test:${s.port}`);
    await expect(createEgress({ allow: loopback }).fetch(`http://[::1]:${s.port}/`, limits)).rejects.toThrow(EgressRefused);
    expect(s.hits).toHaveLength(2);
    s.stop();
  });

  test("an address the URL cannot hold is refused rather than fetched by name", async () => {
    const { resolve } = resolver({ "zoned.test": ["fe80::1%eth0"] });
    const egress = createEgress({ allow: ["fe80::/10"], resolve });
    await expect(egress.fetch("http://zoned.test/", limits)).rejects.toThrow("cannot connect to fe80::1%eth0 by address");
  });

  test("only http and https", async () => {
    const egress = createEgress({ allow: loopback });
    await expect(egress.fetch("file:///etc/passwd", limits)).rejects.toThrow(EgressRefused);
    await expect(egress.fetch("ftp://127.0.0.1/x", limits)).rejects.toThrow(EgressRefused);
  });
});

describe("redirects", () => {
  function chain() {
    return serve((req) => {
      const { pathname } = new URL(req.url);
      const left = Number(pathname.split("/")[2]);
      if (pathname.startsWith("/r/") && left > 0) {
        return new Response(null, { status: 302, headers: { location: left === 1 ? "/final" : `/r/${left - 1}` } });
      }
      return new Response("end");
    });
  }

  test("followed up to maxRedirects, each hop counted", async () => {
    const s = chain();
    const egress = createEgress({ allow: loopback });
    const r = await egress.fetch(`http://127.0.0.1:${s.port}/r/3`, limits);
    expect(r.finalUrl).toBe(`http://127.0.0.1:${s.port}/final`);
    expect(s.hits.map((h) => h.path)).toEqual(["/r/3", "/r/2", "/r/1", "/final"]);
    s.stop();
  });

  test("one more is refused", async () => {
    const s = chain();
    const egress = createEgress({ allow: loopback });
    await expect(egress.fetch(`http://127.0.0.1:${s.port}/r/4`, limits)).rejects.toThrow("too many redirects");
    expect(s.hits).toHaveLength(4);
    s.stop();
  });

  test("a redirect to the metadata address is refused without connecting", async () => {
    const s = serve(() => new Response(null, { status: 302, headers: { location: "http://169.254.169.254/latest/meta-data/" } }));
    const egress = createEgress({ allow: loopback });
    await expect(egress.fetch(`http://127.0.0.1:${s.port}/`, limits)).rejects.toThrow("169.254.169.254 is a metadata address");
    expect(s.hits).toHaveLength(1);
    expect(offLoopback).toEqual([]);
    s.stop();
  });

  test("each hop's name is resolved and checked again", async () => {
    // allow covers 127.0.0.1 only; evil.test claims 127.0.0.2, which nothing listens on and nothing contacts
    const s = serve(() => new Response(null, { status: 307, headers: { location: `http://evil.test:1/` } }));
    const { asked, resolve } = resolver({ "evil.test": ["127.0.0.2"] });
    const egress = createEgress({ allow: ["127.0.0.1/32"], resolve });
    await expect(egress.fetch(`http://127.0.0.1:${s.port}/`, limits)).rejects.toThrow("evil.test resolves to loopback address 127.0.0.2");
    expect(asked).toEqual(["evil.test"]);
    s.stop();
  });

  test("a redirect to another scheme is refused", async () => {
    const s = serve(() => new Response(null, { status: 301, headers: { location: "file:///etc/passwd" } }));
    await expect(createEgress({ allow: loopback }).fetch(`http://127.0.0.1:${s.port}/`, limits)).rejects.toThrow(EgressRefused);
    s.stop();
  });

  test("credentials stay with their origin; 303 turns a POST into a GET", async () => {
    const s = serve((req) => {
      const { pathname, host } = new URL(req.url);
      if (pathname === "/post") return new Response(null, { status: 303, headers: { location: "/same" } });
      if (pathname === "/same") return new Response(null, { status: 302, headers: { location: `http://other.test:${host.split(":")[1]}/end` } });
      return new Response("ok");
    });
    const { resolve } = resolver({ "other.test": ["127.0.0.1"] });
    const egress = createEgress({ allow: loopback, resolve });
    await egress.fetch(`http://127.0.0.1:${s.port}/post`, {
      ...limits,
      method: "POST",
      body: "{}",
      headers: { authorization: "token", "content-type": "application/json" },
    });
    expect(s.hits.map((h) => [h.path, h.method, h.headers.get("authorization")])).toEqual([
      ["/post", "POST", "token"],
      ["/same", "GET", "token"],
      ["/end", "GET", null],
    ]);
    s.stop();
  });
});

describe("body cap", () => {
  const bytes = (n: number) => new Uint8Array(n).fill(7);
  const streamed = (n: number) =>
    new Response(
      new ReadableStream({
        pull(controller) {
          controller.enqueue(bytes(100));
          if ((n -= 100) <= 0) controller.close();
        },
      }),
    );

  test("exactly maxBytes is fine, one more is too large (Content-Length and streamed)", async () => {
    const s = serve((req) => {
      const n = Number(new URL(req.url).pathname.slice(1));
      return new URL(req.url).searchParams.has("stream") ? streamed(n) : new Response(bytes(n));
    });
    const egress = createEgress({ allow: loopback });
    const base = `http://127.0.0.1:${s.port}`;
    expect((await egress.fetch(`${base}/1000`, limits)).body.byteLength).toBe(1000);
    expect((await egress.fetch(`${base}/1000?stream`, limits)).body.byteLength).toBe(1000);
    await expect(egress.fetch(`${base}/1001`, limits)).rejects.toThrow(EgressTooLarge);
    await expect(egress.fetch(`${base}/1001?stream`, { ...limits, maxBytes: 1000 })).rejects.toThrow(EgressTooLarge);
    s.stop();
  });

  test("an endless body is cut off, not downloaded", async () => {
    let sent = 0;
    const s = serve(
      () =>
        new Response(
          new ReadableStream({
            async pull(controller) {
              sent += 64 * 1024;
              controller.enqueue(new Uint8Array(64 * 1024));
              if (sent > 64 * 1024 * 1024) controller.close(); // a backstop for the test itself
              await Bun.sleep(1);
            },
          }),
        ),
    );
    const egress = createEgress({ allow: loopback });
    await expect(egress.fetch(`http://127.0.0.1:${s.port}/`, { ...limits, maxBytes: 100_000 })).rejects.toThrow(EgressTooLarge);
    await Bun.sleep(100);
    expect(sent).toBeLessThan(16 * 1024 * 1024);
    s.stop();
  });

  test("an error status's body is cut at the cap instead of failing", async () => {
    const s = serve(() => new Response(bytes(5000), { status: 500 }));
    const r = await createEgress({ allow: loopback }).fetch(`http://127.0.0.1:${s.port}/`, limits);
    expect(r.status).toBe(500);
    expect(r.body.byteLength).toBe(1000);
    s.stop();
  });
});

describe("network failures are temporary", () => {
  test("a server that never answers times out", async () => {
    const s = serve(() => new Promise<Response>(() => {}));
    const started = performance.now();
    const error = await createEgress({ allow: loopback })
      .fetch(`http://127.0.0.1:${s.port}/`, { ...limits, timeoutMs: 200 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EgressNetworkError);
    expect((error as EgressNetworkError).timedOut).toBe(true);
    expect(performance.now() - started).toBeLessThan(1500);
    s.stop();
  });

  test("a body that stalls times out", async () => {
    const s = serve(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new Uint8Array(10)); // headers and a little, then nothing
            },
          }),
        ),
    );
    const error = await createEgress({ allow: loopback })
      .fetch(`http://127.0.0.1:${s.port}/`, { ...limits, timeoutMs: 200 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EgressNetworkError);
    expect((error as EgressNetworkError).timedOut).toBe(true);
    s.stop();
  });

  test("nothing listening", async () => {
    const s = serve(() => new Response());
    const port = s.port;
    s.stop();
    const error = await createEgress({ allow: loopback })
      .fetch(`http://127.0.0.1:${port}/`, limits)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EgressNetworkError);
    expect((error as EgressNetworkError).timedOut).toBe(false);
  });

  test("a name that does not resolve", async () => {
    const { resolve } = resolver({});
    await expect(createEgress({ allow: [], resolve }).fetch("http://nowhere.test/", limits)).rejects.toThrow(EgressNetworkError);
  });
});

describe("https connects to the checked address and verifies the certificate against the name", () => {
  // Self-signed for DNS:media.test, valid until 2126; for this test only.
  const cert = `-----BEGIN CERTIFICATE-----
MIIBmTCCAT6gAwIBAgIUIBeJwFpyT+iTee52o7V9467/cSEwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKbWVkaWEudGVzdDAgFw0yNjExMjcxMjMwMjBaGA8yMTI2MTEw
MzEyMzAyMFowFTETMBEGA1UEAwwKbWVkaWEudGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABGqAgvObZZmybl1uYtYne5Isp83U+Byd00qBXIs0xV7d8S3BQUIQ
aNQ8VW5BbTowE4jXoSVRYo8CrGAg+U2DFySjajBoMB0GA1UdDgQWBBRM6F5Nxmkm
1A54bGfEy+e0jcRYezAfBgNVHSMEGDAWgBRM6F5Nxmkm1A54bGfEy+e0jcRYezAP
BgNVHRMBAf8EBTADAQH/MBUGA1UdEQQOMAyCCm1lZGlhLnRlc3QwCgYIKoZIzj0E
AwIDSQAwRgIhAJBVU0LaMJ4nlQfcNE5FDVQiVlnZ+Ox/dUOqsK8PO3RiAiEAzBS9
Gk/P61Arg68FXtSI0ONk2nB3d/pJ4AXuiQ2p7eI=
-----END CERTIFICATE-----`;
  const key = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHpV1abvo4JQwpakw
cYqb9ATpBuqHtau69Z6xsP2vMN+hRANCAARqgILzm2WZsm5dbmLWJ3uSLKfN1Pgc
ndNKgVyLNMVe3fEtwUFCEGjUPFVuQW06MBOI16ElUWKPAqxgIPlNgxck
-----END PRIVATE KEY-----`;

  test("right name passes, wrong name fails", async () => {
    const hits: string[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert, key },
      fetch(req) {
        hits.push(req.headers.get("host") ?? "");
        return new Response("secure");
      },
    });
    const { resolve } = resolver({ "media.test": ["127.0.0.1"], "other.test": ["127.0.0.1"] });
    const egress = createEgress({ allow: loopback, resolve });
    const r = await egress.fetch(`https://media.test:${server.port}/`, { ...limits, tls: { ca: cert } });
    expect(new TextDecoder().decode(r.body)).toBe("secure");
    await expect(egress.fetch(`https://other.test:${server.port}/`, { ...limits, tls: { ca: cert } })).rejects.toThrow(
      EgressNetworkError,
    );
    expect(hits).toEqual([`media.test:${server.port}`]);
    server.stop(true);
  });
});

test("no request ever left loopback", () => {
  expect(offLoopback).toEqual([]);
});
