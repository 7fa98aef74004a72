// A campaign's messages arrive at once, all with the same large photo: the image library reads its header
// once, adapts it once, and the store is read once, however many messages ask before the first answer
// (issue #17: the header was read once per message that asked while the first read ran, 128 per campaign
// image in bench/mm7-e2e.ts). Real sharp codec and a real SQLite store, each wrapped to count its calls.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MediaPart } from "../../adapters/carrier.ts";
import { MediaAdapter, type AdaptedCache, type FitOptions } from "../../src/pipeline/adapt.ts";
import { createSharpCodec, type ImageCodec } from "../../src/pipeline/image-codec.ts";
import { defaultConfig, storeOptions } from "../../src/config.ts";
import { SqliteStore } from "../../src/store/sqlite/store.ts";
import { tempDir } from "../support/app.ts";
import { rotatedJpeg } from "../support/images.ts";

/** The real codec and store, counted. */
function counted() {
  const calls = { info: 0, jpeg: 0, gif: 0, cacheGet: 0, cachePut: 0, computed: 0 };
  const sharp = createSharpCodec();
  const codec: ImageCodec = {
    info: (s) => (calls.info++, sharp.info(s)),
    jpeg: (s, o) => (calls.jpeg++, sharp.jpeg(s, o)),
    gif: (s, o) => (calls.gif++, sharp.gif(s, o)),
  };
  // Only its media cache is used here: the default options, as the gateway would open it.
  const store = SqliteStore.open(join(tempDir(), "gateway.db"), storeOptions(defaultConfig(), () => 1_800_000_000_000));

  const cache: AdaptedCache = {
    get: (hash, profile) => (calls.cacheGet++, store.adaptedMedia(hash, profile)),
    put: (hash, profile, result) => (calls.cachePut++, store.putAdaptedMedia(hash, profile, result)),
  };
  const adapter = new MediaAdapter(codec, cache, () => calls.computed++);
  return { calls, adapter, store };
}

const options: FitOptions = {
  carrier: "mms",
  maxMessageBytes: 300 * 1024,
  maxEdge: 1280,
  measure: (parts) => 2000 + parts.reduce((n, p) => n + p.bytes.byteLength, 0),
};

test("64 messages asking at once for the same 3000×2000 photo: one header read, one adaptation, one store read and write", async () => {
  const { calls, adapter, store } = counted();
  const bytes = await rotatedJpeg();
  // A large source is spooled to a file and handed to libvips by path, as the fetcher does.
  const path = join(tempDir(), "campaign.media");
  writeFileSync(path, bytes);
  const part: MediaPart = { contentType: "image/jpeg", bytes, path, cacheKey: "sha256-of-campaign", filename: "campaign.jpg" };

  const burst = await Promise.all(Array.from({ length: 64 }, () => adapter.fit([part], options)));
  expect(calls.info).toBe(1);
  expect(calls.computed).toBe(1);
  expect(calls.cacheGet).toBe(1);
  expect(calls.cachePut).toBe(1);
  const ladder = calls.jpeg;
  expect(ladder).toBeGreaterThanOrEqual(1);
  for (const r of burst) {
    if ("code" in r) throw new Error(r.message);
    expect(r.adapted).toBe(1);
    expect(r.parts[0]!.contentType).toBe("image/jpeg");
    expect(r.parts[0]!.bytes).toBe((burst[0] as { parts: MediaPart[] }).parts[0]!.bytes);
    expect(r.parts[0]!.bytes.byteLength).toBeLessThanOrEqual(300 * 1024);
  }

  // The rest of the campaign: nothing read or computed again.
  await Promise.all(Array.from({ length: 64 }, () => adapter.fit([part], options)));
  expect(calls).toEqual({ info: 1, jpeg: ladder, gif: 0, cacheGet: 1, cachePut: 1, computed: 1 });
  await store.close();
}, 60_000);
