// What carriers send back (src/pipeline/receipts.ts) on a real SQLite store: each receipt's result counted
// and logged, who is told that work may be due, and which account's inbound_url each MO goes to.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import pino from "pino";
import type { CarrierReceipt, InboundMessage } from "../../adapters/carrier.ts";
import { storeOptions } from "../../src/config.ts";
import { createMetrics } from "../../src/observe/metrics.ts";
import { carrierEvents } from "../../src/pipeline/receipts.ts";
import { SqliteStore } from "../../src/store/sqlite/store.ts";
import { tempDir, testConfig } from "../support/app.ts";

function bed(level: "debug" | "info", accounts: Record<string, unknown>[] = []) {
  const dir = tempDir();
  const config = testConfig(dir, accounts.length ? { accounts } : {});
  const store = SqliteStore.open(join(dir, "gateway.db"), storeOptions(config, Date.now));
  const metrics = createMetrics();
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const changes: boolean[] = [];
  const events = carrierEvents({ store, accounts: () => config.accounts, log, metrics, onChange: (f) => changes.push(f) });
  const lookups = { n: 0 };
  const messageOfCarrierId = store.messageOfCarrierId.bind(store);
  store.messageOfCarrierId = (c, id) => (lookups.n++, messageOfCarrierId(c, id));
  const counter = async (name: string, labels: Record<string, string> = {}) => {
    const want = Object.entries(labels);
    const m = await metrics.registry.getSingleMetric(name)!.get();
    return m.values.filter((v) => Object.keys(v.labels).length === want.length && want.every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
  };
  /** A message submitted to "sms" under carrier id `carrierId`. */
  const submitted = async (carrierId: string, to = "12025550123") => {
    const payload = { from: "1", to, subject: "", text: "hi", fallback_text: "fb", media: [], custom_data: null, callback_url: "http://127.0.0.1:9/cb", metadata: null };
    await store.accept({ accountId: "acme", requestId: `r-${carrierId}`, channel: "sms", payload, bodyHash: "h", expiresAt: Date.now() + 3_600_000 });
    const [m] = await store.claimDue("sms", 1);
    await store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: [carrierId] });
    return m!;
  };
  return { store, events, lines, changes, lookups, counter, submitted };
}

const receipt = (id: string, outcome: CarrierReceipt["outcome"], extra: Partial<CarrierReceipt> = {}): CarrierReceipt => ({ carrier: "sms", carrierMessageId: id, outcome, timestamp: Date.now(), ...extra });

describe("receipts", () => {
  test("applied, duplicate and unmatched: counted by carrier, outcome and result; only an applied failure may make a fallback due", async () => {
    const b = bed("info");
    await b.submitted("c1");
    await b.submitted("c2");
    await b.events.receipt(receipt("c1", "delivered"));
    await b.events.receipt(receipt("c1", "delivered"));
    await b.events.receipt(receipt("c2", "failed", { code: "smpp:UNDELIV" }));
    await b.events.receipt(receipt("nope", "delivered", { to: "12025550999", code: "x:y" }));
    expect(b.changes).toEqual([false, true]);
    expect(await b.counter("gateway_receipts_total", { carrier: "sms", outcome: "delivered", result: "applied" })).toBe(1);
    expect(await b.counter("gateway_receipts_total", { carrier: "sms", outcome: "delivered", result: "duplicate" })).toBe(1);
    expect(await b.counter("gateway_receipts_total", { carrier: "sms", outcome: "failed", result: "applied" })).toBe(1);
    expect(await b.counter("gateway_receipts_total", { carrier: "sms", outcome: "delivered", result: "unmatched" })).toBe(1);
    const unmatched = b.lines.filter((l) => String(l.msg).startsWith("receipt matches no submitted message"));
    expect(unmatched).toEqual([expect.objectContaining({ level: 30, carrier: "sms", carrierId: "nope", outcome: "delivered", code: "x:y", to: "12025550999" })]);
    // At info, no line per matched receipt and no read to write one.
    expect(b.lines).toHaveLength(1);
    expect(b.lookups.n).toBe(0);
  });

  test("at debug, each matched receipt is logged with its message", async () => {
    const b = bed("debug");
    const m = await b.submitted("c3");
    await b.events.receipt(receipt("c3", "failed", { code: "smpp:EXPIRED" }));
    expect(b.lines.filter((l) => l.msg === "receipt")).toEqual([expect.objectContaining({ level: 20, messageId: m.id, requestId: "r-c3", carrier: "sms", carrierId: "c3", outcome: "failed", code: "smpp:EXPIRED", result: "applied" })]);
  });

  test("a receipt that arrives in the same turn as its submit answer waits for it and matches", async () => {
    const b = bed("info");
    const payload = { from: "1", to: "12025550123", subject: "", text: "hi", fallback_text: "fb", media: [], custom_data: null, callback_url: "http://127.0.0.1:9/cb", metadata: null };
    await b.store.accept({ accountId: "acme", requestId: "same-turn", channel: "sms", payload, bodyHash: "h", expiresAt: Date.now() + 3_600_000 });
    const [m] = await b.store.claimDue("sms", 1);
    const early = b.events.receipt(receipt("c4", "delivered"));
    await b.store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["c4"] });
    await early;
    expect(await b.counter("gateway_receipts_total", { carrier: "sms", outcome: "delivered", result: "applied" })).toBe(1);
    expect(await b.counter("gateway_receipts_total", { result: "unmatched", carrier: "sms", outcome: "delivered" })).toBe(0);
  });
});

const mo = (to: string, channel: "sms" | "mms" = "sms"): InboundMessage => ({ carrier: "smsc", channel, carrierMessageId: "m1", from: "447700900123", to, text: "hello", media: [], timestamp: Date.now() });
const account = (id: string, extra: Record<string, unknown>) => ({ id, headers: { "Chan-Api-Key": `${id}-key` }, callback_secret: "s", ...extra });
const eventOf = (store: SqliteStore, eventId: string) => store.db.query("SELECT account_id, url, kind FROM events WHERE event_id = ?").get(eventId) as { account_id: string; url: string; kind: string };

describe("MO", () => {
  test("to the account owning the number, else the first enabled one with an inbound_url; counted, logged, and the outbox told", async () => {
    const b = bed("info", [
      account("off", { enabled: false, inbound_url: "http://127.0.0.1:9/off", inbound_numbers: ["18885551234"] }),
      account("nourl", {}),
      account("first", { inbound_url: "http://127.0.0.1:9/first" }),
      account("owner", { inbound_url: "http://127.0.0.1:9/owner", inbound_numbers: ["1888555*"] }),
    ]);
    await b.events.inbound(mo("18885551234"));
    await b.events.inbound(mo("18885550000", "mms"));
    await b.events.inbound(mo("19995550000"));
    const queued = b.lines.filter((l) => l.msg === "MO message queued for the inbound URL");
    expect(queued.map((l) => [l.account, l.owned, l.channel, l.carrier])).toEqual([["owner", true, "sms", "smsc"], ["owner", true, "mms", "smsc"], ["first", false, "sms", "smsc"]]);
    expect(queued.map((l) => eventOf(b.store, l.eventId as string))).toEqual([
      { account_id: "owner", url: "http://127.0.0.1:9/owner", kind: "inbound" },
      { account_id: "owner", url: "http://127.0.0.1:9/owner", kind: "inbound" },
      { account_id: "first", url: "http://127.0.0.1:9/first", kind: "inbound" },
    ]);
    expect(b.changes).toEqual([false, false, false]);
    expect(await b.counter("gateway_inbound_total", { channel: "sms" })).toBe(2);
    expect(await b.counter("gateway_inbound_total", { channel: "mms" })).toBe(1);
    expect(await b.counter("gateway_inbound_unowned_total", { channel: "sms" })).toBe(1);
    expect(await b.counter("gateway_inbound_unowned_total", { channel: "mms" })).toBe(0);
  });

  test("no account with an inbound_url: logged only, nothing queued, nobody woken", async () => {
    const b = bed("info", [account("a", {}), account("b", { enabled: false, inbound_url: "http://127.0.0.1:9/b" })]);
    await b.events.inbound(mo("18885551234"));
    expect(b.lines).toEqual([expect.objectContaining({ level: 40, msg: expect.stringContaining("no account has an inbound_url"), carrier: "smsc", from: "447700900123", to: "18885551234", channel: "sms", text: "hello" })]);
    expect((b.store.db.query("SELECT COUNT(*) AS n FROM events").get() as { n: number }).n).toBe(0);
    expect(b.changes).toEqual([]);
    expect(await b.counter("gateway_inbound_total", { channel: "sms" })).toBe(1);
    expect(await b.counter("gateway_inbound_unowned_total", { channel: "sms" })).toBe(1);
  });

  test("an incomplete concatenated MO is counted by carrier, reason and whether its text was delivered", async () => {
    const b = bed("info");
    b.events.moIncomplete({ carrier: "smsc", reason: "expired", delivered: true });
    b.events.moIncomplete({ carrier: "smsc", reason: "full", delivered: false });
    expect(await b.counter("gateway_mo_incomplete_total", { carrier: "smsc", reason: "expired", result: "delivered" })).toBe(1);
    expect(await b.counter("gateway_mo_incomplete_total", { carrier: "smsc", reason: "full", result: "lost" })).toBe(1);
  });
});
