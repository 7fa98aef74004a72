// Hosted pages and capability memory on a real SQLite file with a fake clock: expiry, purge, one normal
// form for numbers, and the page token's shape. (The same store promises on PostgreSQL: store-conformance.)
import { expect, test } from "bun:test";
import { join } from "node:path";
import { normaliseNumber } from "../../src/domain/number.ts";
import { fallbackOrFail } from "../../src/domain/decisions.ts";
import type { StoredMessage } from "../../src/domain/message.ts";
import { CapabilityMemory } from "../../src/pipeline/capability.ts";
import { MediaLinks, withLink } from "../../src/pipeline/media-link.ts";
import { SqliteStore } from "../../src/store/sqlite/store.ts";
import { tempDir } from "../support/app.ts";

const DAY = 86_400_000;

function open() {
  let t = 1_800_000_000_000;
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const store = SqliteStore.open(join(tempDir(), "gateway.db"), {
    now: clock.now,
    retryBaseMs: 10,
    retryMaxMs: 100,
    receiptWindowMs: DAY,
    intermediateEvents: false,
    inFlightPolicy: "at-most-once",
    noMmsMemoryMs: 30 * DAY,
  });
  return { store, clock };
}

test("+44…, 0044… and 44… (with spaces or dashes) are one number", () => {
  for (const n of ["+44 7700 900123", "0044-7700-900123", "447700900123", " (+44) 7700900123 "]) expect(normaliseNumber(n)).toBe("447700900123");
});

test("a page is found until ttl, then 404 and purged; a second link for the message keeps the first token", async () => {
  const { store, clock } = open();
  const link = await store.ensureMediaLink({ token: "A".repeat(22), messageId: "msg_1", subject: "s", text: "t", media: [] }, 10 * DAY);
  const again = await store.ensureMediaLink({ token: "B".repeat(22), messageId: "msg_1", subject: "s", text: "t", media: [] }, 10 * DAY);
  expect(again.token).toBe(link.token);
  clock.advance(10 * DAY - 1);
  expect((await store.mediaLink(link.token))?.messageId).toBe("msg_1");
  clock.advance(1);
  expect(await store.mediaLink(link.token)).toBeNull();
  expect((await store.purgeMedia(clock.now() - 10 * DAY)).links).toBe(1);
  await store.close();
});

test("the fallback decides what is remembered: the handset's refusal in normal form, never our own content; 0 days = off", () => {
  const m = { id: "msg_x", state: "submitting", channel: "mms", fallback: false, payload: { to: "+44 7700 900123", fallback_text: "fb" } } as StoredMessage;
  const t = fallbackOrFail(m, 1000, { code: "mm7:2002", message: "Address Error" }, 30 * DAY);
  expect(t).toMatchObject({ channel: "sms", fallbackReason: "mm7:2002: Address Error", noMms: { number: "447700900123", reason: "mm7:2002: Address Error", until: 1000 + 30 * DAY } });
  expect(fallbackOrFail(m, 1000, { code: "media:cannot_fit", message: "x" }, 30 * DAY).noMms).toBeUndefined();
  expect(fallbackOrFail(m, 1000, { code: "mm7:2002", message: "Address Error" }, 0).noMms).toBeUndefined();
});

test("capability memory: remembered with the fallback for remember_days in one normal form, then gone; 0 days = off", async () => {
  const { store, clock } = open();
  let hits = 0;
  const memory = new CapabilityMemory(store, 30 * DAY, () => hits++);
  const payload = { from: "1", to: "447700900123", subject: "", text: "hi", fallback_text: "fb", media: [], custom_data: "", callback_url: "https://x.example/cb", metadata: null };
  for (const [to, code] of [["447700900123", "mm7:2002"], ["15550001111", "media:cannot_fit"]] as const) {
    await store.accept({ accountId: "a", requestId: null, channel: "mms", payload: { ...payload, to }, bodyHash: "h", expiresAt: clock.now() + DAY });
    const [m] = await store.claimDue("mms", 1);
    expect((await store.recordSubmit(m!, "mms", { kind: "permanent", code, message: "Address Error", fallbackEligible: true })).fallback).toBe(true);
    expect((await store.getMessage(m!.id))?.fallbackReason).toBe(`${code}: Address Error`);
  }
  expect((await memory.check("+44 7700 900123"))?.reason).toBe("mm7:2002: Address Error");
  // Our own content is no reason to think the handset cannot take MMS.
  expect(await memory.check("15550001111")).toBeNull();
  expect(hits).toBe(1);
  clock.advance(30 * DAY);
  expect(await memory.check("447700900123")).toBeNull();
  expect(await new CapabilityMemory(store, 0, () => hits++).check("447700900123")).toBeNull();
  await store.close();
});

test("page tokens: 22 letters and digits, every symbol reachable, from the injected randomness", async () => {
  const { store } = open();
  let counter = 0;
  const links = new MediaLinks({
    store,
    adapter: null as never,
    fetch: async () => ({ code: "x", message: "x" }),
    baseUrl: "https://m.example.test",
    ttlMs: DAY,
    random: (b) => b.map(() => counter++ % 256),
    warn: () => {},
  });
  const budget = { parts: (text: string) => Math.ceil(text.length / 153), maxParts: 1 };
  const text = await links.fallbackText({ id: "msg_2", payload: { fallback_text: "See", media: [{ url: "http://127.0.0.1:9/x.jpg" }], subject: "", text: "" } } as never, budget);
  expect(text).toMatch(/^See\nhttps:\/\/m\.example\.test\/m\/[A-Za-z0-9]{22}$/);
  // Bytes 248–255 are skipped so every symbol is equally likely: 0..21 map to A..V.
  expect(text.endsWith("ABCDEFGHIJKLMNOPQRSTUV")).toBe(true);
  expect(withLink("x".repeat(300), "https://m.example.test/m/" + "A".repeat(22), budget)).toMatch(/^x+\.\.\.\nhttps:\/\/m\.example\.test\/m\/A{22}$/);
  expect(withLink("x".repeat(300), "https://m.example.test/m/" + "A".repeat(22), budget).length).toBeLessThanOrEqual(153);
  await store.close();
});
