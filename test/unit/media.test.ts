// The media fetcher's decisions (type, name, cache) against a scripted egress: no sockets here.
import { describe, expect, test } from "bun:test";
import type { MediaPart } from "../../adapters/carrier.ts";
import { EgressNetworkError, EgressRefused, EgressTooLarge, type Egress, type EgressRequest } from "../../src/egress/fetch.ts";
import {
  createMediaFetcher,
  filenameFor,
  isMediaError,
  normaliseType,
  sniffType,
  type MediaError,
  type MediaFetcherOptions,
} from "../../src/pipeline/media.ts";

const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46]);
const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
const GIF = new TextEncoder().encode("GIF89a\x01\x00\x01\x00");
const AMR = new TextEncoder().encode("#!AMR\n\x3c\x00");
const ftyp = (brand: string) => new Uint8Array([0, 0, 0, 0x18, ...new TextEncoder().encode(`ftyp${brand}`), 0, 0, 0, 0]);
const TEXT = new TextEncoder().encode("hello");

describe("normaliseType", () => {
  test.each([
    ["image/JPEG; charset=binary", "image/jpeg"],
    [" image/jpg ", "image/jpeg"],
    ["audio/mp3", "audio/mpeg"],
    ["audio/x-wav", "audio/wav"],
    ["application/octet-stream", undefined],
    ["binary/octet-stream", undefined],
    ["", undefined],
    [null, undefined],
    ["text/html; charset=utf-8", "text/html"],
  ])("%p → %p", (raw, expected) => {
    expect(normaliseType(raw)).toBe(expected);
  });
});

describe("sniffType", () => {
  test.each([
    [JPEG, "image/jpeg"],
    [PNG, "image/png"],
    [GIF, "image/gif"],
    [AMR, "audio/amr"],
    [ftyp("isom"), "video/mp4"],
    [ftyp("3gp5"), "video/3gpp"],
    [ftyp("3g2a"), "video/3gpp2"],
    [ftyp("M4A "), "audio/mp4"],
    [TEXT, undefined],
    [new Uint8Array(), undefined],
  ])("%#", (bytes, expected) => {
    expect(sniffType(bytes)).toBe(expected);
  });
});

describe("filenameFor", () => {
  test.each([
    ["https://cdn.example/img/Summer%20Sale!.JPEG?x=1", "image/jpeg", "Summer_Sale.jpg"],
    ["https://cdn.example/a/photo.png", "image/jpeg", "photo.jpg"], // the type decides the extension
    ["https://cdn.example/", "image/png", "media.png"],
    ["https://cdn.example/%E2%9C%93.gif", "image/gif", "media.gif"],
    ["https://cdn.example/..%2F..%2Fetc%2Fpasswd", "text/plain", "etc_passwd.txt"],
    ["https://cdn.example/bad%zz.jpg", "image/jpeg", "media.jpg"],
    ["https://cdn.example/v.mp4", "video/3gpp", "v.3gp"],
    ["https://cdn.example/card", "text/x-vcard", "card.vcf"],
  ])("%p as %p → %p", (url, type, expected) => {
    expect(filenameFor(url, type)).toBe(expected);
  });

  test("at most 40 characters", () => {
    const name = filenameFor(`https://cdn.example/${"x".repeat(100)}.jpg`, "image/jpeg");
    expect(name).toBe(`${"x".repeat(36)}.jpg`);
  });
});

type Reply = { status?: number; headers?: Record<string, string>; body?: Uint8Array } | Error;

/** An egress that answers from a script and records what it was asked. */
function scriptedEgress(reply: (url: string, request: Headers) => Reply) {
  const calls: { url: string; headers: Headers }[] = [];
  const egress: Pick<Egress, "fetch"> = {
    async fetch(url: string, init: EgressRequest) {
      const headers = new Headers(init.headers);
      calls.push({ url, headers });
      const r = reply(url, headers);
      if (r instanceof Error) throw r;
      const status = r.status ?? 200;
      const body = r.body ?? new Uint8Array();
      // As the real egress does: a 2xx body goes to onChunk when one is given, and the response's is empty.
      if (init.onChunk && status >= 200 && status < 300) {
        init.onChunk(body);
        return { status, headers: new Headers(r.headers), body: new Uint8Array(), finalUrl: url };
      }
      return { status, headers: new Headers(r.headers), body, finalUrl: url };
    },
  };
  return { egress, calls };
}

function fetcher(egress: Pick<Egress, "fetch">, extra: Partial<MediaFetcherOptions> = {}) {
  return createMediaFetcher({
    egress,
    maxBytes: 1000,
    timeoutMs: 1000,
    maxRedirects: 3,
    cacheEntries: 100,
    cacheTtlMs: 60_000,
    ...extra,
  });
}

function part(result: MediaPart | MediaError): MediaPart {
  if (isMediaError(result)) throw new Error(`expected a part, got ${JSON.stringify(result)}`);
  return result;
}

function failure(result: MediaPart | MediaError): MediaError {
  if (!isMediaError(result)) throw new Error(`expected an error, got ${result.contentType}`);
  return result;
}

describe("type decision", () => {
  // served Content-Type, declared content_type, bytes → type (or unsupported)
  test.each([
    ["image/png", undefined, PNG, "image/png"],
    ["application/octet-stream", undefined, PNG, "image/png"],
    [undefined, "image/gif", GIF, "image/gif"],
    [undefined, undefined, JPEG, "image/jpeg"],
    ["text/plain; charset=utf-8", "image/png", TEXT, "text/plain"], // served beats declared
    [undefined, "video/3gpp", ftyp("isom"), "video/3gpp"], // same container family: the claim stands
    [undefined, "audio/3gpp", ftyp("3gp4"), "audio/3gpp"],
    ["audio/amr", undefined, AMR, "audio/amr"],
    ["text/vcard", undefined, TEXT, "text/vcard"],
    ["text/html", undefined, TEXT, null],
    ["image/webp", undefined, TEXT, "image/webp"], // taken in to be converted (adapt.ts)
    [undefined, undefined, new TextEncoder().encode("RIFF\0\0\0\0WEBPVP8 "), "image/webp"],
    [undefined, "image/jpeg", ftyp("heic"), "image/heic"], // an iPhone photo sent as "JPEG": the bytes win
    [undefined, undefined, ftyp("avif"), "image/avif"],
    [undefined, undefined, ftyp("qt  "), "video/quicktime"],
    ["image/svg+xml", undefined, TEXT, null],
    [undefined, undefined, TEXT, null],
    ["image/png", undefined, new Uint8Array(), null], // empty body
  ])("served %p declared %p → %p", async (served, declared, body, expected) => {
    const { egress } = scriptedEgress(() => ({ headers: served ? { "content-type": served } : undefined, body }));
    const result = await fetcher(egress).get({ url: "https://cdn.example/m", content_type: declared });
    if (expected === null) {
      expect(failure(result)).toMatchObject({ kind: "permanent", code: "media:unsupported_type" });
    } else {
      expect(part(result).contentType).toBe(expected);
    }
  });

  test("bytes that contradict the claimed type win, and say so", async () => {
    const warnings: Record<string, unknown>[] = [];
    const { egress } = scriptedEgress(() => ({ headers: { "content-type": "image/png" }, body: JPEG }));
    const media = fetcher(egress, { warn: (detail) => warnings.push(detail) });
    expect(part(await media.get({ url: "https://cdn.example/x.png" }))).toMatchObject({
      contentType: "image/jpeg",
      filename: "x.jpg",
    });
    expect(warnings).toEqual([{ url: "https://cdn.example/x.png", claimed: "image/png", sniffed: "image/jpeg" }]);
  });

  test("the same URL with different declared types is fetched once", async () => {
    const { egress, calls } = scriptedEgress(() => ({ body: ftyp("3gp4") }));
    const media = fetcher(egress);
    expect(part(await media.get({ url: "https://cdn.example/a", content_type: "audio/3gpp" })).contentType).toBe("audio/3gpp");
    expect(part(await media.get({ url: "https://cdn.example/a" })).contentType).toBe("video/3gpp");
    expect(calls).toHaveLength(1);
  });
});

describe("the part", () => {
  test("cacheKey is the bytes' sha256, the same across URLs", async () => {
    const { egress } = scriptedEgress(() => ({ headers: { "content-type": "image/jpeg" }, body: JPEG }));
    const media = fetcher(egress);
    const a = part(await media.get({ url: "https://one.example/a.jpg" }));
    const b = part(await media.get({ url: "https://two.example/b.jpg" }));
    expect(a.cacheKey).toBe(new Bun.CryptoHasher("sha256").update(JPEG).digest("hex"));
    expect(b.cacheKey).toBe(a.cacheKey);
    expect(a.bytes).toEqual(JPEG);
  });
});

describe("errors", () => {
  test.each([
    ["refused", new EgressRefused("10.0.0.1 is a private address"), "permanent", "media:refused"],
    ["too large", new EgressTooLarge(1000), "permanent", "media:too_large"],
    ["timeout", new EgressNetworkError("timed out", true), "temporary", "media:network"],
    ["unexpected throw", new Error("surprise"), "temporary", "media:network"],
    ["404", { status: 404 }, "permanent", "media:http_404"],
    ["410", { status: 410 }, "permanent", "media:http_410"],
    ["408", { status: 408 }, "temporary", "media:http_408"],
    ["429", { status: 429 }, "temporary", "media:http_429"],
    ["503", { status: 503 }, "temporary", "media:http_503"],
    ["204", { status: 204 }, "permanent", "media:http_204"],
    ["302 without Location", { status: 302 }, "permanent", "media:http_302"],
  ] as [string, Reply, string, string][])("%s → %s %s", async (_, reply, kind, code) => {
    const { egress } = scriptedEgress(() => reply);
    expect(failure(await fetcher(egress).get({ url: "https://cdn.example/m" }))).toMatchObject({ kind, code });
  });

  test("a permanent failure is remembered, a temporary one is not", async () => {
    let status = 404;
    const { egress, calls } = scriptedEgress(() => ({ status }));
    const media = fetcher(egress);
    await media.get({ url: "https://cdn.example/gone" });
    await media.get({ url: "https://cdn.example/gone" });
    expect(calls).toHaveLength(1);
    status = 503;
    await media.get({ url: "https://cdn.example/busy" });
    await media.get({ url: "https://cdn.example/busy" });
    expect(calls).toHaveLength(3);
  });
});

describe("cache", () => {
  const image = () => ({ headers: { "content-type": "image/jpeg" }, body: JPEG });

  test("least recently used goes first when entries run out", async () => {
    const { egress, calls } = scriptedEgress(image);
    const media = fetcher(egress, { cacheEntries: 2 });
    for (const name of ["a", "b", "a", "c", "a", "b"]) await media.get({ url: `https://cdn.example/${name}` });
    // a, b fetched; a hit (now newest); c evicts b; a hit; b fetched again
    expect(calls.map((c) => c.url.slice(-1))).toEqual(["a", "b", "c", "b"]);
  });

  test("bounded by bytes too", async () => {
    const { egress, calls } = scriptedEgress(image);
    const media = fetcher(egress, { cacheBytes: JPEG.byteLength * 2 });
    for (const name of ["a", "b", "c", "a"]) await media.get({ url: `https://cdn.example/${name}` });
    expect(calls.map((c) => c.url.slice(-1))).toEqual(["a", "b", "c", "a"]);
  });

  test("an item bigger than the whole cache is never kept", async () => {
    const { egress, calls } = scriptedEgress(image);
    const media = fetcher(egress, { cacheBytes: JPEG.byteLength - 1 });
    await media.get({ url: "https://cdn.example/a" });
    await media.get({ url: "https://cdn.example/a" });
    expect(calls).toHaveLength(2);
  });

  test("no-store is fetched every time, max-age shortens the TTL, no-cache revalidates", async () => {
    let t = 0;
    let cacheControl = "no-store";
    const { egress, calls } = scriptedEgress((_, h): Reply =>
      h.get("if-none-match") === '"v1"'
        ? { status: 304, headers: { "cache-control": cacheControl } }
        : { headers: { "content-type": "image/jpeg", "cache-control": cacheControl, etag: '"v1"' }, body: JPEG },
    );
    const media = fetcher(egress, { now: () => t });
    await media.get({ url: "https://cdn.example/s" });
    await media.get({ url: "https://cdn.example/s" });
    expect(calls).toHaveLength(2);

    cacheControl = "public, max-age=2";
    await media.get({ url: "https://cdn.example/m" });
    t = 1999;
    await media.get({ url: "https://cdn.example/m" });
    expect(calls).toHaveLength(3);
    t = 2000;
    expect(part(await media.get({ url: "https://cdn.example/m" })).bytes).toEqual(JPEG);
    expect(calls).toHaveLength(4);
    expect(calls[3]!.headers.get("if-none-match")).toBe('"v1"');

    cacheControl = "no-cache";
    await media.get({ url: "https://cdn.example/n" });
    await media.get({ url: "https://cdn.example/n" });
    expect(calls).toHaveLength(6);
    expect(calls[5]!.headers.get("if-none-match")).toBe('"v1"');
  });

  test("stale bytes are used when revalidation fails temporarily", async () => {
    let t = 0;
    let up = true;
    const { egress, calls } = scriptedEgress(() => (up ? image() : { status: 503 }));
    const media = fetcher(egress, { now: () => t, cacheTtlMs: 1000 });
    await media.get({ url: "https://cdn.example/a" });
    up = false;
    t = 5000;
    expect(part(await media.get({ url: "https://cdn.example/a" })).bytes).toEqual(JPEG);
    expect(part(await media.get({ url: "https://cdn.example/a" })).bytes).toEqual(JPEG);
    expect(calls).toHaveLength(3); // each stale use still tries the server first
  });

  test("a permanent failure on revalidation replaces the bytes", async () => {
    let t = 0;
    let status = 200;
    const { egress } = scriptedEgress(() => (status === 200 ? image() : { status }));
    const media = fetcher(egress, { now: () => t, cacheTtlMs: 1000 });
    await media.get({ url: "https://cdn.example/a" });
    status = 404;
    t = 5000;
    expect(failure(await media.get({ url: "https://cdn.example/a" })).code).toBe("media:http_404");
  });
});
