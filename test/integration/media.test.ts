// The media fetcher through the real egress against real servers on loopback; fetch is wrapped so that
// nothing can leave loopback even by mistake.
import { afterAll, beforeAll, expect, spyOn, test } from "bun:test";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { tempDir, waitFor } from "../support/app.ts";
import type { MediaPart } from "../../adapters/carrier.ts";
import { createEgress } from "../../src/egress/fetch.ts";
import { createMediaFetcher, isMediaError, type MediaError, type MediaFetcherOptions } from "../../src/pipeline/media.ts";

const realFetch = globalThis.fetch;
const offLoopback: string[] = [];
let fetchSpy: ReturnType<typeof spyOn>;
beforeAll(() => {
  fetchSpy = spyOn(globalThis, "fetch").mockImplementation(((input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.hostname !== "127.0.0.1") {
      offLoopback.push(url.href);
      return Promise.reject(new Error(`test guard: ${url.href} is not loopback`));
    }
    return realFetch(input, init);
  }) as typeof fetch);
});
afterAll(() => fetchSpy.mockRestore());

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);

function serve(handler: (req: Request) => Response | Promise<Response>) {
  const requests: Request[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      requests.push(req);
      return handler(req);
    },
  });
  return { requests, url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

function fetcher(allow: string[], extra: Partial<MediaFetcherOptions> = {}) {
  return createMediaFetcher({
    egress: createEgress({ allow }),
    maxBytes: 1000,
    timeoutMs: 2000,
    maxRedirects: 2,
    cacheEntries: 10,
    cacheTtlMs: 60_000,
    ...extra,
  });
}

function part(result: MediaPart | MediaError): MediaPart {
  if (isMediaError(result)) throw new Error(`expected a part, got ${JSON.stringify(result)}`);
  return result;
}

test("ten concurrent gets of one URL make one request, and later gets none", async () => {
  const s = serve(async () => {
    await Bun.sleep(50); // keep the first request open while the others arrive
    return new Response(PNG, { headers: { "content-type": "image/png" } });
  });
  const media = fetcher(["127.0.0.0/8"]);
  const results = await Promise.all(Array.from({ length: 10 }, () => media.get({ url: `${s.url}/img/logo.png` })));
  for (const r of results) expect(part(r)).toMatchObject({ contentType: "image/png", filename: "logo.png", bytes: PNG });
  await media.get({ url: `${s.url}/img/logo.png` });
  expect(s.requests).toHaveLength(1);
  s.stop();
});

test("after the TTL an ETag is revalidated; 304 keeps the bytes, 200 replaces them", async () => {
  let version = "v1";
  const s = serve((req) => {
    if (req.headers.get("if-none-match") === `"${version}"`) return new Response(null, { status: 304 });
    const body = version === "v1" ? PNG : new Uint8Array([...PNG, 1]);
    return new Response(body, {
      headers: { "content-type": "image/png", etag: `"${version}"`, "last-modified": "Wed, 01 Jan 2025 00:00:00 GMT" },
    });
  });
  let t = 0;
  const media = fetcher(["127.0.0.0/8"], { now: () => t, cacheTtlMs: 1000 });
  const url = `${s.url}/a.png`;
  const first = part(await media.get({ url }));
  t = 999;
  await media.get({ url });
  expect(s.requests).toHaveLength(1);

  t = 1000;
  const revalidated = part(await media.get({ url }));
  expect(s.requests).toHaveLength(2);
  expect(s.requests[1]!.headers.get("if-none-match")).toBe('"v1"');
  expect(s.requests[1]!.headers.get("if-modified-since")).toBe("Wed, 01 Jan 2025 00:00:00 GMT");
  expect(revalidated.bytes).toEqual(PNG);
  expect(revalidated.cacheKey).toBe(first.cacheKey);
  t = 1999; // the 304 made it fresh again
  await media.get({ url });
  expect(s.requests).toHaveLength(2);

  version = "v2";
  t = 2000;
  const changed = part(await media.get({ url }));
  expect(s.requests).toHaveLength(3);
  expect(changed.bytes.byteLength).toBe(PNG.byteLength + 1);
  expect(changed.cacheKey).not.toBe(first.cacheKey);
  s.stop();
});

test("maxBytes is fine, one byte over is a permanent too_large", async () => {
  const s = serve((req) => new Response(new Uint8Array(Number(new URL(req.url).pathname.slice(1))).fill(65), { headers: { "content-type": "text/plain" } }));
  const media = fetcher(["127.0.0.0/8"]);
  expect(part(await media.get({ url: `${s.url}/1000` })).bytes.byteLength).toBe(1000);
  expect(await media.get({ url: `${s.url}/1001` })).toMatchObject({ kind: "permanent", code: "media:too_large" });
  s.stop();
});

test("with an empty allow list the loopback server is refused and sees nothing", async () => {
  const s = serve(() => new Response(PNG));
  expect(await fetcher([]).get({ url: `${s.url}/a.png` })).toMatchObject({ kind: "permanent", code: "media:refused" });
  expect(s.requests).toHaveLength(0);
  s.stop();
});

test("a hanging server is a temporary network error", async () => {
  const s = serve(() => new Promise<Response>(() => {}));
  const result = await fetcher(["127.0.0.0/8"], { timeoutMs: 150 }).get({ url: `${s.url}/slow.jpg` });
  expect(result).toMatchObject({ kind: "temporary", code: "media:network" });
  s.stop();
});

test("an untyped upload is typed by its bytes; an HTML error page is unsupported", async () => {
  const s = serve((req) =>
    new URL(req.url).pathname === "/upload"
      ? new Response(PNG, { headers: { "content-type": "application/octet-stream" } })
      : new Response("<html>not found</html>", { headers: { "content-type": "text/html" } }),
  );
  const media = fetcher(["127.0.0.0/8"]);
  expect(part(await media.get({ url: `${s.url}/upload` }))).toMatchObject({ contentType: "image/png", filename: "upload.png" });
  expect(await media.get({ url: `${s.url}/page`, content_type: "image/jpeg" })).toMatchObject({
    kind: "permanent",
    code: "media:unsupported_type",
  });
  s.stop();
});

test("a redirect to the metadata address is refused without connecting", async () => {
  const s = serve(() => Response.redirect("http://169.254.169.254/latest/meta-data/", 302));
  expect(await fetcher(["127.0.0.0/8"]).get({ url: `${s.url}/a.jpg` })).toMatchObject({ kind: "permanent", code: "media:refused" });
  expect(s.requests).toHaveLength(1);
  s.stop();
});

/** A JPEG-signed body of `total` bytes sent in 64 KiB chunks, pausing after `pauseAt` until `resume()`; counts what it sent. */
function streamingBody(total: number, pauseAt = Infinity) {
  const state = { sent: 0, resume: () => {} };
  const paused = new Promise<void>((resolve) => (state.resume = resolve));
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (state.sent >= total) return controller.close();
      if (state.sent >= pauseAt) await paused;
      const chunk = new Uint8Array(Math.min(65536, total - state.sent)).fill(state.sent % 251);
      if (state.sent === 0) chunk.set([0xff, 0xd8, 0xff]);
      state.sent += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  return { body, state };
}

const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : []);

test("a large source streams into a file under spoolDir as it arrives, not into memory, the cap applied as it streams; the part reads from the file", async () => {
  const dir = join(tempDir(), "media-tmp", "fetch");
  const total = 6 * 1024 * 1024;
  const { body, state } = streamingBody(total, 3 * 1024 * 1024);
  const s = serve(() => new Response(body, { headers: { "content-type": "image/jpeg" } }));
  const media = fetcher(["127.0.0.0/8"], { maxBytes: 16 * 1024 * 1024, spoolDir: dir });
  const pending = media.get({ url: `${s.url}/big.jpg` });
  // Half the body sent and the response not finished: it is already on disk.
  await waitFor("the first 3 MB on disk", () => filesIn(dir).some((f) => statSync(f).size >= 3 * 1024 * 1024));
  expect(state.sent).toBeLessThan(total);
  state.resume();
  const got = part(await pending);
  expect(got.path).toStartWith(dir);
  expect(statSync(got.path!).size).toBe(total);
  expect(got.bytes.byteLength).toBe(total);
  expect(got.bytes[total - 1]).toBe((total - 65536) % 251);
  expect(got.cacheKey).toBe(new Bun.CryptoHasher("sha256").update(new Uint8Array(await Bun.file(got.path!).arrayBuffer())).digest("hex"));
  // A small one stays in memory.
  const small = serve(() => new Response(PNG, { headers: { "content-type": "image/png" } }));
  expect(part(await media.get({ url: `${small.url}/a.png` })).path).toBeUndefined();
  s.stop();
  small.stop();

  // The cap holds while streaming: a body without Content-Length is cut at maxBytes, no file is left.
  const endless = streamingBody(64 * 1024 * 1024);
  const e = serve(() => new Response(endless.body, { headers: { "content-type": "image/jpeg" } }));
  const capped = fetcher(["127.0.0.0/8"], { maxBytes: 4 * 1024 * 1024, spoolDir: join(dir, "capped") });
  expect(await capped.get({ url: `${e.url}/endless.jpg` })).toMatchObject({ kind: "permanent", code: "media:too_large" });
  expect(endless.state.sent).toBeLessThan(64 * 1024 * 1024);
  expect(filesIn(join(dir, "capped"))).toEqual([]);
  e.stop();
});

test("no request ever left loopback", () => {
  expect(offLoopback).toEqual([]);
});
