// Hosted pages and capability memory on a real SQLite file with a fake clock: expiry, purge, one normal
// form for numbers, and the page token's shape.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { normaliseNumber } from "../../src/domain/number.ts";
import { CapabilityMemory } from "../../src/pipeline/capability.ts";
import { MediaLinks } from "../../src/pipeline/media-link.ts";
import { MediaStore } from "../../src/store/media-store.ts";
import { Store } from "../../src/store/store.ts";
import { tempDir } from "../support/app.ts";

const DAY = 86_400_000;

function open() {
  let t = 1_800_000_000_000;
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const store = Store.open(join(tempDir(), "gateway.db"), { now: clock.now, retryBaseMs: 10, retryMaxMs: 100, receiptWindowMs: DAY, intermediateEvents: false, inFlightPolicy: "at-most-once" });
  return { store, media: new MediaStore(store.db, store.writer, clock.now), clock };
}

test("+44…, 0044… and 44… (with spaces or dashes) are one number", () => {
  for (const n of ["+44 7700 900123", "0044-7700-900123", "447700900123", " (+44) 7700900123 "]) expect(normaliseNumber(n)).toBe("447700900123");
});

test("a page is found until ttl, then 404 and purged; a second link for the message keeps the first token", async () => {
  const { store, media, clock } = open();
  const link = await media.ensureLink({ token: "A".repeat(22), messageId: "msg_1", subject: "s", text: "t", media: [] }, 10 * DAY);
  const again = await media.ensureLink({ token: "B".repeat(22), messageId: "msg_1", subject: "s", text: "t", media: [] }, 10 * DAY);
  expect(again.token).toBe(link.token);
  clock.advance(10 * DAY - 1);
  expect(media.link(link.token)?.messageId).toBe("msg_1");
  clock.advance(1);
  expect(media.link(link.token)).toBeNull();
  expect((await media.purge(clock.now() - 10 * DAY)).links).toBe(1);
  await store.close();
});

test("capability memory: remembered for remember_days in one normal form, then gone; 0 days = off", async () => {
  const { store, media, clock } = open();
  let hits = 0;
  const memory = new CapabilityMemory(media, 30 * DAY, () => hits++);
  const m = { payload: { to: "447700900123" } } as never;
  await store.writer.write(() => memory.onFallback(m, { code: "mm7:2002", message: "Address Error" }, clock.now()));
  // Our own content is no reason to think the handset cannot take MMS.
  await store.writer.write(() => memory.onFallback({ payload: { to: "15550001111" } } as never, { code: "media:cannot_fit", message: "x" }, clock.now()));
  expect(memory.check("+44 7700 900123")?.reason).toBe("mm7:2002: Address Error");
  expect(memory.check("15550001111")).toBeNull();
  expect(hits).toBe(1);
  clock.advance(30 * DAY);
  expect(memory.check("447700900123")).toBeNull();
  expect(new CapabilityMemory(media, 0, () => hits++).check("447700900123")).toBeNull();
  await store.close();
});

test("page tokens: 22 letters and digits, every symbol reachable, from the injected randomness", async () => {
  const { store, media } = open();
  let counter = 0;
  const links = new MediaLinks({
    store: media,
    adapter: null as never,
    fetch: async () => ({ code: "x", message: "x" }),
    baseUrl: "https://m.example.test",
    ttlMs: DAY,
    smsParts: (text) => Math.ceil(text.length / 153),
    maxParts: 1,
    random: (b) => b.map(() => counter++ % 256),
    warn: () => {},
  });
  const text = await links.fallbackText({ id: "msg_2", payload: { fallback_text: "See", media: [{ url: "http://127.0.0.1:9/x.jpg" }], subject: "", text: "" } } as never);
  expect(text).toMatch(/^See\nhttps:\/\/m\.example\.test\/m\/[A-Za-z0-9]{22}$/);
  // Bytes 248–255 are skipped so every symbol is equally likely: 0..21 map to A..V.
  expect(text.endsWith("ABCDEFGHIJKLMNOPQRSTUV")).toBe(true);
  expect(links.withLink("x".repeat(300), "https://m.example.test/m/" + "A".repeat(22))).toMatch(/^x+\.\.\.\nhttps:\/\/m\.example\.test\/m\/A{22}$/);
  expect(links.withLink("x".repeat(300), "https://m.example.test/m/" + "A".repeat(22)).length).toBeLessThanOrEqual(153);
  await store.close();
});
