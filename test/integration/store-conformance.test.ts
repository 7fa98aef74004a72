// One suite, every engine: the store's promises through its interface only, on a real SQLite file and
// a real PostgreSQL database (a fresh one per test, dropped after). Fake clock; real I/O.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { idReadings } from "../../adapters/smpp/message-id.ts";
import { LEARN_AFTER } from "../../src/domain/receipt-match.ts";
import type { MessagePayload, StoredMessage } from "../../src/domain/message.ts";
import type { Store, StoreOptions } from "../../src/store/index.ts";
import { PostgresStore } from "../../src/store/postgres/store.ts";
import { SqliteStore } from "../../src/store/sqlite/store.ts";
import { tempDir } from "../support/app.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";
import { seeded } from "../support/random.ts";

type Policy = "at-most-once" | "at-least-once";
const options = (clock: { t: number }, inFlightPolicy: Policy) => ({
  now: () => clock.t,
  retryBaseMs: 1000,
  retryMaxMs: 60000,
  receiptWindowMs: 3_600_000,
  intermediateEvents: false,
  inFlightPolicy,
  noMmsMemoryMs: DAY,
  random: seeded(1),
});

const DAY = 86_400_000;

const databases: TestDatabase[] = [];
const opened: Store[] = [];
// Closed and dropped as each test ends: held to the end of the file, the stores' pools could take more
// connections than the shared server allows.
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close().catch(() => {})));
  for (const d of databases.splice(0)) await d.drop();
}, 60_000);

interface Engine {
  name: string;
  skip: boolean;
  open(clock: { t: number }, policy?: Policy, extra?: Partial<StoreOptions>): Promise<Store>;
}

const engines: Engine[] = [
  {
    name: "sqlite",
    skip: false,
    async open(clock, policy = "at-most-once", extra = {}) {
      const s = SqliteStore.open(join(tempDir(), "g.db"), { ...options(clock, policy), ...extra });
      opened.push(s);
      return s;
    },
  },
  {
    name: "postgres",
    skip: !pgAvailable,
    async open(clock, policy = "at-most-once", extra = {}) {
      const db = await createTestDatabase();
      databases.push(db);
      const s = await PostgresStore.open({ ...options(clock, policy), ...extra, url: db.url, nodeId: "node-a", poolSize: 4 });
      opened.push(s);
      return s;
    },
  },
];

const payload: MessagePayload = { from: "1", to: "12025550123", subject: "", text: "hi", fallback_text: "fb", media: [], custom_data: "cd", callback_url: "https://x.example/cb", metadata: null };
const input = (requestId: string | null) => ({ accountId: "a", requestId, channel: "sms" as const, payload, bodyHash: "h", expiresAt: 10_000_000 });
/** A new SMS accepted, claimed and taken by the carrier under `carrierId`; its message id. */
const takenAs = async (store: Store, carrierId: string) => {
  const { messageId } = await store.accept(input(null));
  const [m] = await store.claimDue("sms", 1);
  await store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: [carrierId] });
  return messageId!;
};
const eventsOf = async (store: Store, id: string) => ((await store.describe(id)) as { events: { body: string; state: string }[] }).events;

for (const engine of engines) {
  describe.skipIf(engine.skip)(`store on ${engine.name}`, () => {
    test("copies of one request_id sent at once make one message and one answer", async () => {
      const store = await engine.open({ t: 1000 });
      const answers = await Promise.all(Array.from({ length: 20 }, () => store.accept(input("r1"))));
      expect(new Set(answers.map((a) => a.body)).size).toBe(1);
      expect(answers.filter((a) => !a.replay)).toHaveLength(1);
      expect(store.queuedCount()).toBe(1);
      expect((await store.claimDue("sms", 100)).length).toBe(1);
    });

    test("a request the database refuses fails alone: the others sent with it are stored and answered, its request_id stays free", async () => {
      const store = await engine.open({ t: 1000 });
      // NaN is no epoch: both engines refuse the row (PostgreSQL the bigint, SQLite the NOT NULL).
      const bad = { ...input("bad"), expiresAt: Number.NaN };
      const sent = [input("g1"), input("g2"), bad, input("g3"), input("g1")];
      const settled = await Promise.allSettled(sent.map((i) => store.accept(i)));
      expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
      const [g1, g2, , g3, copy] = settled.map((s) => (s.status === "fulfilled" ? s.value : null));
      expect([g1, g2, g3].map((a) => a!.replay)).toEqual([false, false, false]);
      expect(copy).toMatchObject({ replay: true, body: g1!.body, messageId: g1!.messageId });
      for (const a of [g1, g2, g3]) expect((await store.getMessage(a!.messageId!))!.state).toBe("accepted");
      expect(await store.lookupRequest("a", "bad", "h")).toBeNull();
      expect(store.queuedCount()).toBe(3);
      expect((await store.accept(input("bad"))).replay).toBe(false);
    });

    test("a refusal is remembered; the request_id is new again after the dedup window", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      await store.rememberRefusal("a", "bad", 400, '{"error":1}', "h");
      expect(await store.accept(input("bad"))).toMatchObject({ status: 400, replay: true });
      expect(await store.lookupRequest("a", "bad", "other")).toMatchObject({ status: 400, bodyDiffers: true });
      const first = await store.accept(input("r2"));
      clock.t += 10_000;
      expect((await store.purge(clock.t - 5_000, 0)).dedup).toBe(2);
      const again = await store.accept(input("r2"));
      expect(again.replay).toBe(false);
      expect(again.messageId).not.toBe(first.messageId);
    });

    test("a transition is a compare-and-set: a stale copy cannot apply twice", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept(input("r3"));
      const [m] = await store.claimDue("sms", 10);
      await store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["c1"] });
      await expect(store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["c1"] })).rejects.toThrow(/no longer submitting|illegal/);
    });

    test("temporary outcomes back off; past the validity the message fails with one event", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      await store.accept({ ...input("r4"), expiresAt: 5000 });
      const [m] = await store.claimDue("sms", 10);
      await store.recordSubmit(m!, "sms", { kind: "temporary", code: "x:busy", message: "busy" });
      expect(await store.claimDue("sms", 10)).toHaveLength(0);
      clock.t += 3000;
      const [again] = await store.claimDue("sms", 10);
      expect(again!.attempts).toBe(2);
      expect((await store.recordSubmit(again!, "sms", { kind: "temporary", code: "x:busy", message: "busy" })).final).toBe("failed");
      const events = await eventsOf(store, m!.id);
      expect(events).toHaveLength(1);
      expect(JSON.parse(events[0]!.body)).toMatchObject({ status: "failed", error: { code: "x:busy" } });
      expect(store.queuedCount()).toBe(0);
    });

    test("a receipt before the submit answer is held, then applied; repeats are idempotent", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept(input("r5"));
      const [m] = await store.claimDue("sms", 10);
      const receipt = { carrier: "sms", carrierMessageId: "c5", outcome: "delivered" as const, timestamp: 1500 };
      expect(await store.applyReceipt(receipt)).toBe("unmatched");
      expect((await store.listUnmatchedReceipts()).map((u) => u.carrierIds)).toEqual([["c5"]]);
      expect(await store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["c5"] })).toEqual({ fallback: false, final: "delivered" });
      expect((await store.getMessage(m!.id))!.state).toBe("delivered");
      expect(await store.applyReceipt(receipt)).toBe("duplicate");
      expect(await eventsOf(store, m!.id)).toHaveLength(1);
      expect(await store.listUnmatchedReceipts()).toEqual([]);
    });

    test("a held receipt that sends the message to its fallback is reported as a fallback, not a final", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept({ ...input("r5f"), channel: "mms" });
      const [m] = await store.claimDue("mms", 10);
      expect(await store.applyReceipt({ carrier: "mms", carrierMessageId: "early", outcome: "failed", fallbackEligible: true, timestamp: 1 })).toBe("unmatched");
      expect(await store.recordSubmit(m!, "mms", { kind: "ok", carrierMessageIds: ["early"] })).toEqual({ fallback: true, final: null });
      expect((await store.getMessage(m!.id))!.channel).toBe("sms");
    });

    test("a held receipt waits under each reading, is listed once, and is dropped once after the hold time", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      const r = { carrier: "sms", carrierMessageId: "26", readings: idReadings("26"), outcome: "failed" as const, timestamp: 1 };
      expect(await store.applyReceipt(r)).toBe("unmatched");
      expect(await store.listUnmatchedReceipts()).toEqual([{ carrier: "sms", carrierIds: ["26", "1A", "38"], receivedAt: 1000, receipt: r }]);
      clock.t += 10_000;
      expect(await store.dropStaleEarlyReceipts(5_000)).toEqual([{ carrier: "sms", carrier_id: "26" }]);
      expect(await store.listUnmatchedReceipts()).toEqual([]);
    });

    test("multipart: delivered only when every part is; failed as soon as one part fails", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept(input("r6"));
      await store.accept(input("r7"));
      const [a, b] = await store.claimDue("sms", 10);
      await store.recordSubmit(a!, "sms", { kind: "ok", carrierMessageIds: ["a1", "a2"] });
      await store.recordSubmit(b!, "sms", { kind: "ok", carrierMessageIds: ["b1", "b2"] });
      await store.applyReceipt({ carrier: "sms", carrierMessageId: "a1", outcome: "delivered", timestamp: 1 });
      expect((await store.getMessage(a!.id))!.state).toBe("submitted");
      await store.applyReceipt({ carrier: "sms", carrierMessageId: "a2", outcome: "delivered", timestamp: 2 });
      expect((await store.getMessage(a!.id))!.state).toBe("delivered");
      // The delivered event names the first part's id, whichever part reported last.
      expect(JSON.parse((await eventsOf(store, a!.id))[0]!.body).carrier_message_id).toBe("a1");
      await store.applyReceipt({ carrier: "sms", carrierMessageId: "b2", outcome: "failed", code: "smpp:UNDELIV", timestamp: 3 });
      await store.applyReceipt({ carrier: "sms", carrierMessageId: "b1", outcome: "delivered", timestamp: 4 });
      expect((await store.getMessage(b!.id))!.state).toBe("failed");
      expect((await eventsOf(store, a!.id)).length + (await eventsOf(store, b!.id)).length).toBe(2);
    });

    test("in flight at start-up: at-most-once fails with a distinct code; at-least-once resends", async () => {
      for (const policy of ["at-most-once", "at-least-once"] as const) {
        const store = await engine.open({ t: 1000 }, policy);
        await store.accept(input("r8"));
        const [m] = await store.claimDue("sms", 10);
        expect(await store.recoverInFlight()).toBe(1);
        const d = (await store.describe(m!.id)) as { state: string; lastError: string | null };
        if (policy === "at-most-once") {
          expect(d.state).toBe("failed");
          expect(d.lastError).toContain("gateway:in_flight_unknown");
        } else {
          expect(d.state).toBe("accepted");
          expect(await store.claimDue("sms", 10)).toHaveLength(1);
        }
      }
    });

    test("a pending receipt (en route, deferred) changes nothing: the message waits for its final one", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept(input("rp"));
      const [m] = await store.claimDue("sms", 10);
      await store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["cp"] });
      expect(await store.applyReceipt({ carrier: "sms", carrierMessageId: "cp", outcome: "pending", timestamp: 1 })).toBe("ignored");
      expect((await store.getMessage(m!.id))!.state).toBe("submitted");
      expect(await store.openCarrierIds("sms")).toEqual([{ carrierMessageId: "cp", to: payload.to }]);
      expect(await store.applyReceipt({ carrier: "sms", carrierMessageId: "cp", outcome: "delivered", timestamp: 2 })).toBe("applied");
      expect((await store.getMessage(m!.id))!.state).toBe("delivered");
    });

    test("purge goes on in chunks until no finished message and no delivered event is left, whichever table runs out first", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      const finished = async (n: number) => {
        for (let i = 0; i < n; i++) {
          await store.accept(input(null));
          const [m] = await store.claimDue("sms", 10);
          await store.recordSubmit(m!, "sms", { kind: "permanent", code: "x:no", message: "no", fallbackEligible: false });
        }
      };
      const deliveredInbound = async (n: number) => {
        for (let i = 0; i < n; i++) {
          await store.recordInbound("a", "https://x.example/mo", { carrier: "sms", channel: "sms", carrierMessageId: `mo${i}`, from: "1", to: "2", text: "t", media: [], timestamp: 1 });
        }
        await store.eventsDelivered((await store.dueEvents(clock.t, 100)).filter((e) => e.messageId === null).map((e) => e.seq));
      };
      // More finished messages than delivered events (the failed messages' events are not delivered: kept)...
      await finished(5);
      await deliveredInbound(1);
      clock.t += 10_000;
      expect(await store.purge(clock.t, clock.t, 2)).toEqual({ dedup: 0, messages: 5, events: 1 });
      // ...then more delivered events than finished messages.
      await deliveredInbound(5);
      clock.t += 10_000;
      expect(await store.purge(clock.t, clock.t, 2)).toEqual({ dedup: 0, messages: 0, events: 5 });
      expect(await store.dueEvents(clock.t, 100)).toHaveLength(5);
    });

    test("no report within the receipt window → final `sent`", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      await store.accept(input("r9"));
      const [m] = await store.claimDue("sms", 10);
      await store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["c9"] });
      expect(await store.openCarrierIds("sms")).toEqual([{ carrierMessageId: "c9", to: payload.to }]);
      clock.t += 3_600_001;
      expect(await store.expireReceiptWindows(100)).toBe(1);
      expect((await store.getMessage(m!.id))!.state).toBe("sent");
    });

    test("the queue count follows a message through submit, fallback and the end", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept({ ...input("q1"), channel: "mms" });
      expect(store.queuedCount()).toBe(1);
      const [m] = await store.claimDue("mms", 10);
      expect(store.queuedCount()).toBe(1); // submitting still waits for the carrier
      await store.recordSubmit(m!, "mms", { kind: "ok", carrierMessageIds: ["mm1"] });
      expect(store.queuedCount()).toBe(0); // submitted: only the report is awaited
      await store.applyReceipt({ carrier: "mms", carrierMessageId: "mm1", outcome: "failed", fallbackEligible: true, timestamp: 1 });
      expect(store.queuedCount()).toBe(1); // the fallback SMS waits for its carrier
      const [sms] = await store.claimDue("sms", 10);
      await store.recordSubmit(sms!, "sms", { kind: "ok", carrierMessageIds: ["s1"] });
      await store.applyReceipt({ carrier: "sms", carrierMessageId: "s1", outcome: "delivered", timestamp: 2 });
      expect(await store.getMessage(m!.id)).toMatchObject({ state: "delivered", channel: "sms", fallback: true });
      expect(store.queuedCount()).toBe(0);
    });

    test("a receipt's fallback keeps its reason for the SMS events and remembers the handset in the same transaction", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      await store.accept({ ...input("f1"), channel: "mms", payload: { ...payload, to: "+1 202-555-0123" } });
      const [m] = await store.claimDue("mms", 10);
      await store.recordSubmit(m!, "mms", { kind: "ok", carrierMessageIds: ["mf1"] });
      await store.applyReceipt({ carrier: "mms", carrierMessageId: "mf1", outcome: "failed", code: "mm7:4006", message: "no MMS", fallbackEligible: true, timestamp: 1 });
      expect((await store.getMessage(m!.id))?.fallbackReason).toBe("mm7:4006: no MMS");
      const [sms] = await store.claimDue("sms", 10);
      await store.recordSubmit(sms!, "sms", { kind: "ok", carrierMessageIds: ["sf1"] });
      await store.applyReceipt({ carrier: "sms", carrierMessageId: "sf1", outcome: "delivered", timestamp: 2 });
      const [event] = await eventsOf(store, m!.id);
      expect(JSON.parse(event!.body)).toMatchObject({ status: "delivered", fallback: true, fallback_reason: "mm7:4006: no MMS" });
      expect(await store.noMmsMemory("12025550123")).toMatchObject({ reason: "mm7:4006: no MMS", until: 1 + DAY, hits: 1 });
      expect((await store.listNoMms()).map((e) => [e.number, e.hits])).toEqual([["12025550123", 1]]);
      expect(await store.forgetNoMms("12025550123")).toBe(true);
      expect(await store.noMmsMemory("12025550123")).toBeNull();
      expect(await store.forgetNoMms("12025550123")).toBe(false);
      // Closed here, not only after the file: the server's connection slots are shared with other suites.
      await store.close();
    });

    test("media: adaptations round-trip (bytes or unfit) and are purged once unused; one page per message, gone after its ttl", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      const bytes = new Uint8Array([0, 255, 1, 254, 0]);
      await store.putAdaptedMedia("h1", "mms/100B", { contentType: "image/jpeg", bytes, width: 3, height: 2 });
      await store.putAdaptedMedia("h2", "mms/100B", { unfit: "too big" });
      const got = await store.adaptedMedia("h1", "mms/100B");
      expect(got && "bytes" in got ? [...got.bytes] : null).toEqual([...bytes]);
      expect(got).toMatchObject({ contentType: "image/jpeg", width: 3, height: 2 });
      expect(await store.adaptedMedia("h2", "mms/100B")).toEqual({ unfit: "too big" });
      expect(await store.adaptedMedia("h1", "other")).toBeNull();

      const link = await store.ensureMediaLink({ token: "T1", messageId: "msg_1", subject: "s", text: "t", media: [{ hash: "h1", profile: "mms/100B" }] }, 10 * DAY);
      expect((await store.ensureMediaLink({ token: "T2", messageId: "msg_1", subject: "s", text: "t", media: [] }, 10 * DAY)).token).toBe("T1");
      expect(await store.mediaLink("T1")).toEqual(link);
      expect(link.expiresAt).toBe(1000 + 10 * DAY);
      clock.t += 10 * DAY;
      expect(await store.mediaLink("T1")).toBeNull();
      expect(await store.purgeMedia(1001)).toEqual({ links: 1, capability: 0, adapted: 2 });
      expect(await store.adaptedMedia("h1", "mms/100B")).toBeNull();
      await store.close();
    });

    test("outbox: only a message's oldest pending event is due; retry, dead letter, requeue", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      await store.accept({ ...input("o1"), channel: "mms" });
      const [m] = await store.claimDue("mms", 10);
      await store.recordSubmit(m!, "mms", { kind: "permanent", code: "mm7:4000", message: "no", fallbackEligible: false });
      const [first] = await store.dueEvents(clock.t, 10);
      expect(first).toMatchObject({ messageId: m!.id, accountId: "a", url: payload.callback_url });
      await store.eventsRetry([first!.seq], clock.t + 500, "503");
      expect(await store.dueEvents(clock.t, 10)).toEqual([]);
      expect(await store.nextEventDue(clock.t)).toBe(clock.t + 500);
      clock.t += 500;
      await store.eventsDead([first!.seq], "410");
      expect((await store.listDeadEvents()).map((e) => e.seq)).toEqual([first!.seq]);
      expect(await store.requeueDead("all")).toBe(1);
      await store.eventsDelivered([(await store.dueEvents(clock.t, 10))[0]!.seq]);
      expect(await store.dueEvents(clock.t, 10)).toEqual([]);
      expect(await store.eventStats()).toEqual([]);
    });

    test("outbox: a busy (account, URL) is left out until its batch is answered", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      for (const [i, url] of ["https://x.example/one", "https://x.example/two"].entries()) {
        await store.accept({ ...input(`k${i}`), payload: { ...payload, callback_url: url } });
        const [m] = await store.claimDue("sms", 10);
        await store.recordSubmit(m!, "sms", { kind: "permanent", code: "x", message: "no", fallbackEligible: false });
      }
      expect((await store.dueEvents(clock.t, 10)).map((e) => e.url).sort()).toEqual(["https://x.example/one", "https://x.example/two"]);
      expect((await store.dueEvents(clock.t, 10, [{ accountId: "a", url: "https://x.example/one" }])).map((e) => e.url)).toEqual(["https://x.example/two"]);
      expect(await store.dueEvents(clock.t, 10, [{ accountId: "b", url: "https://x.example/one" }, { accountId: "a", url: "https://x.example/two" }])).toHaveLength(1);
    });

    test("routing: each claim records its carrier; a retry the route keeps on its carrier comes back pinned, another comes back free", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      await store.accept(input(null));
      await store.accept(input(null));
      const [kept, free] = await store.claimDue("sms", 10, () => "uk_a");
      expect([kept!.carrier, free!.carrier]).toEqual(["uk_a", "uk_a"]);
      const busy = { kind: "temporary" as const, code: "smpp:0x58", message: "ESME_RTHROTTLED" };
      await store.recordSubmit(kept!, "uk_a", busy, { pin: true, elsewhere: false });
      await store.recordSubmit(free!, "uk_a", busy, { pin: false, elsewhere: false });
      clock.t += 120_000;
      const seen = new Map<string, string | null>();
      await store.claimDue("sms", 10, (x) => {
        seen.set(x.id, x.pinned);
        return x.pinned ?? "uk_b";
      });
      expect(seen.get(kept!.id)).toBe("uk_a");
      expect(seen.get(free!.id)).toBeNull();
      const details = ((await store.describe(kept!.id)) as { history: { detail?: string }[] }).history.map((h) => h.detail ?? "");
      expect(details[1]).toBe("claimed for uk_a");
      expect(details[2]).toStartWith("temporary smpp:0x58 from uk_a: ESME_RTHROTTLED; retry in ");
      expect(details[3]).toBe("claimed for uk_a");
      expect((await store.getMessage(free!.id))!.carrier).toBe("uk_b");
    });

    test("routing: a permanent refusal the route lets another carrier try goes back to the queue with that carrier refused", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept(input(null));
      const [m] = await store.claimDue("sms", 10, () => "uk_a");
      const r = await store.recordSubmit(m!, "uk_a", { kind: "permanent", code: "smpp:0x0b", message: "ESME_RINVDSTADR", fallbackEligible: false }, { pin: false, elsewhere: true });
      expect(r).toEqual({ fallback: false, final: null });
      const [again] = await store.claimDue("sms", 10, (x) => (x.refused.includes("uk_a") ? "uk_b" : "uk_a"));
      expect(again!.refused).toEqual(["uk_a"]);
      expect(again!.carrier).toBe("uk_b");
    });

    test("routing: at-least-once recovery resends only to the carrier the message was claimed for", async () => {
      const store = await engine.open({ t: 1000 }, "at-least-once");
      await store.accept(input(null));
      await store.claimDue("sms", 10, () => "uk_a");
      expect(await store.recoverInFlight()).toBe(1);
      const [m] = await store.claimDue("sms", 10, (x) => x.pinned ?? "uk_b");
      expect(m!.pinned).toBe("uk_a");
      expect(m!.carrier).toBe("uk_a");
    });

    test("operator retry: a failed message goes again with a fresh validity; its old carrier ids are forgotten", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      await store.accept(input("x1"));
      const [m] = await store.claimDue("sms", 10);
      await store.recordSubmit(m!, "sms", { kind: "permanent", code: "smpp:0x0b", message: "bad", fallbackEligible: false });
      expect(await store.retryFailed({ errorCode: "smpp:0x0b" }, 60_000)).toBe(1);
      const [again] = await store.claimDue("sms", 10);
      expect(again).toMatchObject({ id: m!.id, state: "submitting", expiresAt: clock.t + 60_000 });
    });

    // What each call answers, in detail (first written for SQLite in store.test.ts; here for every engine).
    const submitted = async (store: Store, requestId: string, channel: "sms" | "mms", ids: string[]) => {
      await store.accept({ ...input(requestId), channel });
      const m = (await store.claimDue(channel, 10)).find((x) => x.requestId === requestId)!;
      await store.recordSubmit(m, channel, { kind: "ok", carrierMessageIds: ids });
      return m.id;
    };
    const lastError = async (store: Store, id: string) => JSON.parse(((await store.describe(id)) as { lastError: string }).lastError) as { code: string; message: string };

    test("intake answers: a new message and its body, its replay (same or other body), no request_id, a refusal and its repeat", async () => {
      const store = await engine.open({ t: 1000 });
      expect(await store.lookupRequest("a", "i1", "h")).toBeNull();
      const first = await store.accept(input("i1"));
      expect(first).toEqual({ status: 200, body: first.body, replay: false, bodyDiffers: false, messageId: expect.stringMatching(/^msg_/) });
      expect(JSON.parse(first.body)).toEqual({ id: first.messageId, request_id: "i1", status: "accepted" });
      expect(await store.accept(input("i1"))).toEqual({ status: 200, body: first.body, replay: true, bodyDiffers: false, messageId: first.messageId });
      expect(await store.accept({ ...input("i1"), bodyHash: "other" })).toEqual({ status: 200, body: first.body, replay: true, bodyDiffers: true, messageId: first.messageId });
      expect(await store.lookupRequest("a", "i1", "h")).toEqual({ status: 200, body: first.body, replay: true, bodyDiffers: false, messageId: first.messageId });
      // Another account's same request_id is another request.
      const other = await store.accept({ ...input("i1"), accountId: "b" });
      expect(other.replay).toBe(false);
      expect(other.messageId).not.toBe(first.messageId);
      // Without a request_id nothing is deduplicated: two messages.
      const [a, b] = await Promise.all([store.accept(input(null)), store.accept(input(null))]);
      expect([a.replay, b.replay]).toEqual([false, false]);
      expect(a.messageId).not.toBe(b.messageId);
      expect(JSON.parse(a.body)).toEqual({ id: a.messageId, request_id: null, status: "accepted" });
      expect(store.queuedCount()).toBe(4);
      expect((await store.claimDue("sms", 10)).map((m) => m.id).sort()).toEqual([first.messageId!, other.messageId!, a.messageId!, b.messageId!].sort());
      // A refusal: its own answer first, then the stored one whatever is sent again.
      expect(await store.rememberRefusal("a", "bad", 400, '{"error":1}', "h")).toEqual({ status: 400, body: '{"error":1}', replay: false, bodyDiffers: false, messageId: null });
      expect(await store.rememberRefusal("a", "bad", 400, '{"error":2}', "h2")).toEqual({ status: 400, body: '{"error":1}', replay: true, bodyDiffers: true, messageId: null });
      expect(await store.lookupRequest("a", "bad", "h")).toEqual({ status: 400, body: '{"error":1}', replay: true, bodyDiffers: false, messageId: null });
    });

    test("copies of a request_id sent together: the first copy makes the message, the others replay it", async () => {
      const store = await engine.open({ t: 1000 });
      const sent = [input("z"), { ...input("y"), accountId: "b" }, { ...input("z"), bodyHash: "h2" }, input("y"), input("z"), { ...input("y"), accountId: "b" }];
      const answers = await Promise.all(sent.map((i) => store.accept(i)));
      expect(answers.map((x) => x.replay)).toEqual([false, false, true, false, true, true]);
      expect(answers.map((x) => x.bodyDiffers)).toEqual([false, false, true, false, false, false]);
      expect([answers[2]!.messageId, answers[4]!.messageId]).toEqual([answers[0]!.messageId, answers[0]!.messageId]);
      expect(answers[5]!.messageId).toBe(answers[1]!.messageId);
      expect(new Set(answers.map((x) => x.messageId)).size).toBe(3);
      expect(store.queuedCount()).toBe(3);
    });

    test("recordSubmit: accepted by the carrier, no final yet; the receipt window starts now; the intermediate event names the carrier id", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock, "at-most-once", { intermediateEvents: true });
      await store.accept(input("s1"));
      const [m] = await store.claimDue("sms", 10);
      expect(m).toMatchObject({ state: "submitting", attempts: 1 });
      expect(await store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["c1"] })).toEqual({ fallback: false, final: null });
      expect(await store.getMessage(m!.id)).toMatchObject({ state: "submitted", attempts: 1, carrier: "sms" });
      expect(await store.nextDue("submitted", "sms")).toBe(1000 + 3_600_000);
      expect(await store.nextDue("accepted", "sms")).toBeNull();
      clock.t += 3_599_999;
      expect(await store.expireReceiptWindows(10)).toBe(0);
      expect((await eventsOf(store, m!.id)).map((e) => JSON.parse(e.body))).toMatchObject([{ status: "sent", carrier_message_id: "c1" }]);
    });

    test("recordSubmit: a held receipt applied at the submit answer reports the final it made; one part of two reported is no final", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept(input("s2"));
      await store.accept(input("s3"));
      const claimed = await store.claimDue("sms", 10);
      const [a, b] = ["s2", "s3"].map((r) => claimed.find((m) => m.requestId === r));
      expect(await store.applyReceipt({ carrier: "sms", carrierMessageId: "h1", outcome: "delivered", timestamp: 1 })).toBe("unmatched");
      expect(await store.recordSubmit(a!, "sms", { kind: "ok", carrierMessageIds: ["h1"] })).toEqual({ fallback: false, final: "delivered" });
      expect(await store.applyReceipt({ carrier: "sms", carrierMessageId: "p1", outcome: "delivered", timestamp: 1 })).toBe("unmatched");
      expect(await store.recordSubmit(b!, "sms", { kind: "ok", carrierMessageIds: ["p1", "p2"] })).toEqual({ fallback: false, final: null });
      expect((await store.getMessage(b!.id))!.state).toBe("submitted");
      expect(await store.openCarrierIds("sms")).toEqual([{ carrierMessageId: "p2", to: payload.to }]);
      expect(await store.applyReceipt({ carrier: "sms", carrierMessageId: "p2", outcome: "delivered", timestamp: 2 })).toBe("applied");
      expect((await store.getMessage(b!.id))!.state).toBe("delivered");
    });

    test("recordSubmit in doubt: failed gateway:in_flight_unknown under at-most-once, retried with backoff under at-least-once", async () => {
      for (const policy of ["at-most-once", "at-least-once"] as const) {
        const store = await engine.open({ t: 1000 }, policy);
        await store.accept(input("d1"));
        const [m] = await store.claimDue("sms", 10);
        const r = await store.recordSubmit(m!, "sms", { kind: "temporary", code: "smpp:timeout", message: "no answer", inDoubt: true, retryAfterMs: 5000 });
        if (policy === "at-most-once") {
          expect(r).toEqual({ fallback: false, final: "failed" });
          expect((await store.getMessage(m!.id))!.state).toBe("failed");
          expect((await lastError(store, m!.id)).code).toBe("gateway:in_flight_unknown");
          expect(store.queuedCount()).toBe(0);
        } else {
          expect(r).toEqual({ fallback: false, final: null });
          expect((await store.getMessage(m!.id))!.state).toBe("accepted");
          expect(await store.nextDue("accepted", "sms")).toBe(6000);
          expect(store.queuedCount()).toBe(1);
        }
      }
    });

    test("recordSubmit temporary: retried while the retry falls inside the validity, failed when it would fall at or after its end", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept({ ...input("t1"), expiresAt: 6001 });
      await store.accept({ ...input("t2"), expiresAt: 6000 });
      const claimed = await store.claimDue("sms", 10);
      const [a, b] = ["t1", "t2"].map((r) => claimed.find((m) => m.requestId === r));
      const busy = { kind: "temporary" as const, code: "x:busy", message: "busy", retryAfterMs: 5000 };
      expect(await store.recordSubmit(a!, "sms", busy)).toEqual({ fallback: false, final: null });
      expect(await store.recordSubmit(b!, "sms", busy)).toEqual({ fallback: false, final: "failed" });
      expect((await store.getMessage(b!.id))!.state).toBe("failed");
      expect(await store.getMessage(a!.id)).toMatchObject({ state: "accepted", attempts: 1 });
    });

    test("recordSubmit permanent: an MMS the handset cannot take goes to its fallback SMS; an SMS, or no fallback text, fails", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept({ ...input("f1"), channel: "mms" });
      await store.accept({ ...input("f2"), channel: "mms", payload: { ...payload, fallback_text: "" } });
      await store.accept(input("f3"));
      const refused = { kind: "permanent" as const, code: "mm7:2002", message: "cannot take MMS", fallbackEligible: true };
      const claimed = await store.claimDue("mms", 10);
      const [fb, none] = ["f1", "f2"].map((r) => claimed.find((m) => m.requestId === r));
      expect(await store.recordSubmit(fb!, "mms", refused)).toEqual({ fallback: true, final: null });
      expect(await store.getMessage(fb!.id)).toMatchObject({ state: "accepted", channel: "sms", fallback: true, fallbackReason: "mm7:2002: cannot take MMS" });
      expect(await store.recordSubmit(none!, "mms", refused)).toEqual({ fallback: false, final: "failed" });
      const smsClaimed = await store.claimDue("sms", 10);
      const [sms, fallback] = ["f3", "f1"].map((r) => smsClaimed.find((m) => m.requestId === r));
      expect(await store.recordSubmit(sms!, "sms", refused)).toEqual({ fallback: false, final: "failed" });
      expect(await store.getMessage(sms!.id)).toMatchObject({ state: "failed", channel: "sms" });
      expect(await store.recordSubmit(fallback!, "sms", { kind: "permanent", code: "x:no", message: "no", fallbackEligible: false })).toEqual({ fallback: false, final: "failed" });
      expect(store.queuedCount()).toBe(0);
    });

    test("validity expiry while waiting for a retry: failed gateway:validity_expired at the next claim, with exactly one event and one outcome", async () => {
      const clock = { t: 1000 };
      const finals: string[] = [];
      const store = await engine.open(clock, "at-most-once", { retryMaxMs: 1000, onOutcome: (o) => finals.push(o.kind === "final" ? o.status : o.kind) });
      await store.accept({ ...input("v1"), expiresAt: 100_000 });
      const [m] = await store.claimDue("sms", 10);
      await store.recordSubmit(m!, "sms", { kind: "temporary", code: "x:busy", message: "busy" });
      clock.t = 100_000;
      expect(await store.claimDue("sms", 10)).toHaveLength(0);
      expect((await store.getMessage(m!.id))!.state).toBe("failed");
      expect(await lastError(store, m!.id)).toMatchObject({ code: "gateway:validity_expired", message: expect.stringContaining("x:busy") });
      clock.t += 10 * 3_600_000;
      expect(await store.claimDue("sms", 10)).toHaveLength(0);
      expect(await store.expireReceiptWindows(100)).toBe(0);
      expect(await store.recoverInFlight()).toBe(0);
      expect((await eventsOf(store, m!.id)).map((e) => JSON.parse(e.body))).toMatchObject([{ status: "failed", error: { code: "gateway:validity_expired" } }]);
      expect(finals).toEqual(["failed"]);
      expect(store.queuedCount()).toBe(0);
    });

    test("receipts: a failed one names its error (message defaults to the code), an SMS never falls back, an MMS does; outcomes told once", async () => {
      const finals: string[] = [];
      const store = await engine.open({ t: 1000 }, "at-most-once", { onOutcome: (o) => finals.push(o.kind === "final" ? o.status : o.kind) });
      const id = await submitted(store, "rc1", "sms", ["k1"]);
      expect(await store.applyReceipt({ carrier: "sms", carrierMessageId: "k1", outcome: "failed", code: "smpp:UNDELIV", fallbackEligible: true, timestamp: 2 })).toBe("applied");
      expect(await store.getMessage(id)).toMatchObject({ state: "failed", channel: "sms", fallback: false, carrier: "sms" });
      expect((await eventsOf(store, id)).map((e) => JSON.parse(e.body))).toMatchObject([{ status: "failed", error: { code: "smpp:UNDELIV", message: "smpp:UNDELIV" } }]);
      const mms = await submitted(store, "rc2", "mms", ["k2"]);
      expect(await store.applyReceipt({ carrier: "mms", carrierMessageId: "k2", outcome: "failed", code: "mm7:NotSupported", message: "cannot show MMS", fallbackEligible: true, timestamp: 3 })).toBe("applied");
      expect(await store.getMessage(mms)).toMatchObject({ state: "accepted", channel: "sms", fallback: true });
      expect(await store.applyReceipt({ carrier: "mms", carrierMessageId: "k2", outcome: "failed", code: "mm7:NotSupported", fallbackEligible: true, timestamp: 4 })).toBe("duplicate");
      expect(finals).toEqual(["failed", "fallback"]);
    });

    test(`receipts: after ${LEARN_AFTER} hex-answer/decimal-receipt matches, a receipt is read that way only`, async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      const submit = (carrierId: string) => takenAs(store, carrierId);
      const receipt = (id: string) => store.applyReceipt({ carrier: "sms", carrierMessageId: idReadings(id)[0]!.key, readings: idReadings(id), to: payload.to, outcome: "delivered", timestamp: clock.t });
      for (let i = 0; i < LEARN_AFTER; i++) {
        const m = await submit((0xf4240 + i).toString(16).toUpperCase());
        expect(await receipt(String(1_000_000 + i))).toBe("applied");
        expect((await store.getMessage(m))!.state).toBe("delivered");
      }
      // Same handset; the one whose answer happens to read 1000003 as written was sent later, nearer the receipt.
      const meant = await submit("F4243");
      clock.t += 3000;
      const lookalike = await submit("1000003");
      expect(await receipt("1000003")).toBe("applied");
      expect((await store.getMessage(meant))!.state).toBe("delivered");
      expect((await store.getMessage(lookalike))!.state).toBe("submitted");
    });

    test("receipts: an id two messages' ids can be read as goes to the one submitted nearest the receipt's arrival", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      const submit = (carrierId: string) => takenAs(store, carrierId);
      const asWritten = await submit("1000000");
      clock.t += 4000;
      const inHex = await submit("F4240");
      expect(await store.applyReceipt({ carrier: "sms", carrierMessageId: "1000000", readings: idReadings("1000000"), to: payload.to, outcome: "delivered", timestamp: clock.t })).toBe("applied");
      expect((await store.getMessage(inHex))!.state).toBe("delivered");
      expect((await store.getMessage(asWritten))!.state).toBe("submitted");
    });

    test("receipts: one that beats its submit answer is not applied to an older message its id reads as in another base", async () => {
      const store = await engine.open({ t: 1000 });
      const accept = async (to: string) => {
        await store.accept({ ...input(null), payload: { ...payload, to } });
        return (await store.claimDue("sms", 1))[0]!;
      };
      // A decimal SMSC: the older message got id 10 and waits for its receipt; the newer one's answer (16) is not stored yet.
      const older = await accept("12025550160");
      await store.recordSubmit(older, "sms", { kind: "ok", carrierMessageIds: ["10"] });
      const newer = await accept("12025550161");
      // "16" read as decimal and written in hex is "10".
      expect(await store.applyReceipt({ carrier: "sms", carrierMessageId: "16", readings: idReadings("16"), to: "12025550161", outcome: "delivered", timestamp: 1 })).toBe("unmatched");
      expect((await store.getMessage(older.id))!.state).toBe("submitted");
      expect(await store.recordSubmit(newer, "sms", { kind: "ok", carrierMessageIds: ["16"] })).toEqual({ fallback: false, final: "delivered" });
      expect((await store.getMessage(newer.id))!.state).toBe("delivered");
      expect((await store.getMessage(older.id))!.state).toBe("submitted");
    });

    test("recordSubmit without routing: a retry comes back free, and only the accepted submit's carrier ids wait for receipts", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      await store.accept(input("nr"));
      const [m] = await store.claimDue("sms", 10, () => "uk_a");
      await store.recordSubmit(m!, "uk_a", { kind: "temporary", code: "x:busy", message: "busy" });
      clock.t += 120_000;
      const pinned: (string | null)[] = [];
      const [again] = await store.claimDue("sms", 10, (x) => {
        pinned.push(x.pinned);
        return "uk_b";
      });
      expect(pinned).toEqual([null]);
      expect(await store.recordSubmit(again!, "uk_b", { kind: "ok", carrierMessageIds: ["ok1"] })).toEqual({ fallback: false, final: null });
      expect(await store.openCarrierIds("uk_b")).toEqual([{ carrierMessageId: "ok1", to: payload.to }]);
      expect(await store.openCarrierIds("uk_a")).toEqual([]);
      // A claim without a route keeps the carrier the message last had.
      await store.accept(input("nr2"));
      const [m2] = await store.claimDue("sms", 10, () => "uk_a");
      await store.recordSubmit(m2!, "uk_a", { kind: "temporary", code: "x:busy", message: "busy" });
      clock.t += 120_000;
      expect((await store.claimDue("sms", 10)).map((x) => x.carrier)).toEqual(["uk_a"]);
    });

    test("a receipt held for the second part of a submit is applied by it and no longer held", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept(input("hp"));
      const [m] = await store.claimDue("sms", 10);
      expect(await store.applyReceipt({ carrier: "sms", carrierMessageId: "q2", outcome: "delivered", timestamp: 1 })).toBe("unmatched");
      expect(await store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["q1", "q2"] })).toEqual({ fallback: false, final: null });
      expect(await store.listUnmatchedReceipts()).toEqual([]);
      expect(await store.openCarrierIds("sms")).toEqual([{ carrierMessageId: "q1", to: payload.to }]);
    });

    test("receipts held for several parts are applied in the submit's part order, not their arrival order", async () => {
      const store = await engine.open({ t: 1000 });
      await store.accept(input("ho"));
      const [m] = await store.claimDue("sms", 10);
      await store.applyReceipt({ carrier: "sms", carrierMessageId: "o2", outcome: "failed", code: "x:second", timestamp: 1 });
      await store.applyReceipt({ carrier: "sms", carrierMessageId: "o1", outcome: "failed", code: "x:first", timestamp: 2 });
      expect(await store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["o1", "o2"] })).toEqual({ fallback: false, final: "failed" });
      expect((await eventsOf(store, m!.id)).map((e) => JSON.parse(e.body))).toMatchObject([{ status: "failed", error: { code: "x:first" } }]);
      expect(await store.listUnmatchedReceipts()).toEqual([]);
    });

    test("a claim takes at most its limit, oldest first; the rest wait for the next claim", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      for (let i = 0; i < 5; i++) {
        await store.accept(input(`l${i}`));
        clock.t += 1;
      }
      expect((await store.claimDue("sms", 2)).map((m) => m.requestId)).toEqual(["l0", "l1"]);
      expect((await store.claimDue("sms", 2)).map((m) => m.requestId)).toEqual(["l2", "l3"]);
      expect((await store.claimDue("sms", 2)).map((m) => m.requestId)).toEqual(["l4"]);
      expect(await store.claimDue("sms", 2)).toEqual([]);
    });

    test("a repeated receipt for one part of two is a duplicate; a receipt after the window's `sent` changes nothing", async () => {
      const clock = { t: 1000 };
      const store = await engine.open(clock);
      const two = await submitted(store, "dp1", "sms", ["d1", "d2"]);
      const part = { carrier: "sms", carrierMessageId: "d1", outcome: "delivered" as const, timestamp: 2 };
      expect(await store.applyReceipt(part)).toBe("applied");
      expect(await store.applyReceipt(part)).toBe("duplicate");
      expect(await store.openCarrierIds("sms")).toEqual([{ carrierMessageId: "d2", to: payload.to }]);
      const late = await submitted(store, "dp2", "sms", ["w1"]);
      clock.t += 3_600_001;
      expect(await store.expireReceiptWindows(10)).toBe(2);
      expect(await store.applyReceipt({ carrier: "sms", carrierMessageId: "w1", outcome: "delivered", timestamp: 3 })).toBe("duplicate");
      expect(await store.applyReceipt({ carrier: "sms", carrierMessageId: "d2", outcome: "failed", timestamp: 3 })).toBe("duplicate");
      for (const id of [two, late]) {
        expect((await store.getMessage(id))!.state).toBe("sent");
        expect(await eventsOf(store, id)).toHaveLength(1);
      }
    });

    test("receipts: all parts reported, one of them only 'unknown': final `sent`, not delivered", async () => {
      const store = await engine.open({ t: 1000 });
      const id = await submitted(store, "rc3", "sms", ["u1", "u2"]);
      await store.applyReceipt({ carrier: "sms", carrierMessageId: "u1", outcome: "delivered", timestamp: 2 });
      await store.applyReceipt({ carrier: "sms", carrierMessageId: "u2", outcome: "unknown", timestamp: 3 });
      expect((await store.getMessage(id))!.state).toBe("sent");
      expect((await eventsOf(store, id)).map((e) => JSON.parse(e.body))).toMatchObject([{ status: "sent", carrier_message_id: "u1" }]);
    });
  });
}

describe.skipIf(!pgAvailable)("several nodes on one PostgreSQL", () => {
  async function nodes(n: number, clock: { t: number }, policy: Policy = "at-most-once", leaseMs = 30_000) {
    const db = await createTestDatabase();
    databases.push(db);
    // Started together: the migration runs once under its lock.
    const stores = await Promise.all(Array.from({ length: n }, (_, i) => PostgresStore.open({ ...options(clock, policy), url: db.url, nodeId: `node-${i}`, poolSize: 4, leaseMs })));
    opened.push(...stores);
    return stores;
  }

  test("the same request_id at two nodes at once: one message, one answer", async () => {
    const [a, b] = await nodes(2, { t: 1000 });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a! : b!).accept(input("same"))));
    expect(new Set(answers.map((x) => x.messageId))).toEqual(new Set([answers[0]!.messageId]));
    expect(answers.filter((x) => !x.replay)).toHaveLength(1);
  });

  test("an inbound message taken at one node wakes the other's outbox", async () => {
    const [a, b] = await nodes(2, { t: 1000 });
    // Without the NOTIFY this waits until the test's timeout fails it.
    const woken = new Promise<string>((resolve) => b!.watch(resolve));
    await a!.recordInbound("a", "https://x.example/mo", { carrier: "sms", channel: "sms", carrierMessageId: "mo1", from: "1", to: "2", text: "t", media: [], timestamp: 1 });
    expect(await woken).toBe("events");
    expect(await b!.dueEvents(1000, 10)).toHaveLength(1);
  });

  test("claims at two nodes never overlap", async () => {
    const [a, b] = await nodes(2, { t: 1000 });
    for (let i = 0; i < 40; i++) await a!.accept(input(`c${i}`));
    const [x, y] = await Promise.all([a!.claimDue("sms", 25), b!.claimDue("sms", 25)]);
    const ids = [...x, ...y].map((m) => m.id);
    expect(new Set(ids).size).toBe(40);
    expect(ids).toHaveLength(40);
  });

  test("a claim passes over messages left to the node holding their carrier's binds: its own due work behind them is claimed", async () => {
    const clock = { t: 1000 };
    const [a] = await nodes(1, clock);
    // Older work for another node's carrier, more than one claim's batch of it.
    for (let i = 0; i < 5; i++) await a!.accept(input(`theirs${i}`));
    clock.t += 1;
    const mine = await a!.accept({ ...input("mine"), payload: { ...payload, to: "447700900123" } });
    const claimed = await a!.claimDue("sms", 2, (m) => (m.payload.to === "447700900123" ? "uk_a" : null));
    expect(claimed.map((m) => m.id)).toEqual([mine.messageId!]);
    // What it passed over is untouched, still due for the node holding its carrier.
    expect((await a!.claimDue("sms", 10, () => "uk_b")).map((m) => m.requestId ?? "").sort()).toEqual([0, 1, 2, 3, 4].map((i) => `theirs${i}`));
  });

  test("a claim reading past messages left to other nodes still takes no more than its limit", async () => {
    const clock = { t: 1000 };
    const [a] = await nodes(1, clock);
    const mine = (r: string) => ({ ...input(r), payload: { ...payload, to: "447700900123" } });
    for (const i of [input("t0"), mine("m0"), input("t1"), mine("m1"), mine("m2"), mine("m3")]) {
      await a!.accept(i);
      clock.t += 1;
    }
    const ours = (m: StoredMessage) => (m.payload.to === "447700900123" ? "uk_a" : null);
    expect((await a!.claimDue("sms", 2, ours)).map((m) => m.requestId)).toEqual(["m0", "m1"]);
    expect((await a!.claimDue("sms", 2, ours)).map((m) => m.requestId)).toEqual(["m2", "m3"]);
  });

  test("a receipt arriving at the other node finds the message; one held there is applied by the submit", async () => {
    const [a, b] = await nodes(2, { t: 1000 });
    await a!.accept(input("r1"));
    await a!.accept(input("r2"));
    const [m1, m2] = await a!.claimDue("sms", 10);
    await a!.recordSubmit(m1!, "sms", { kind: "ok", carrierMessageIds: ["k1"] });
    expect(await b!.applyReceipt({ carrier: "sms", carrierMessageId: "k1", outcome: "delivered", timestamp: 5 })).toBe("applied");
    expect(await b!.applyReceipt({ carrier: "sms", carrierMessageId: "k2", outcome: "delivered", timestamp: 6 })).toBe("unmatched");
    await a!.recordSubmit(m2!, "sms", { kind: "ok", carrierMessageIds: ["k2"] });
    expect((await a!.getMessage(m1!.id))!.state).toBe("delivered");
    expect((await b!.getMessage(m2!.id))!.state).toBe("delivered");
  });

  test("a node that stops renewing its lease: another applies the in-flight policy, the late answer is refused", async () => {
    const clock = { t: 1000 };
    const [a, b] = await nodes(2, clock, "at-most-once", 300);
    await a!.accept(input("l1"));
    const [m] = await a!.claimDue("sms", 10);
    // node-0 "dies": its timer stops renewing, the clock passes the lease.
    await a!.close();
    clock.t += 1000;
    // Node B's next heartbeat (every lease/3 of real time) takes the message over.
    for (let i = 0; i < 200 && (await b!.getMessage(m!.id))!.state === "submitting"; i++) await Bun.sleep(20);
    const d = (await b!.describe(m!.id)) as { state: string; lastError: string; events: unknown[] };
    expect(d.state).toBe("failed");
    expect(d.lastError).toContain("gateway:in_flight_unknown");
    expect(d.events).toHaveLength(1);
  });

  test("at-least-once: the survivor claims the message again, and the stopped node's late answer cannot land", async () => {
    const clock = { t: 1000 };
    const [a, b] = await nodes(2, clock, "at-least-once", 300);
    await a!.accept(input("l2"));
    const [m] = await a!.claimDue("sms", 10);
    await a!.close();
    clock.t += 1000;
    for (let i = 0; i < 200 && (await b!.getMessage(m!.id))!.state !== "accepted"; i++) await Bun.sleep(20);
    const [again] = await b!.claimDue("sms", 10);
    expect(again?.id).toBe(m!.id);
    // node-0 comes back (same name) with the answer of its old submit: the lease is node-1's now.
    const revived = await PostgresStore.open({ ...options(clock, "at-least-once"), url: (b as unknown as { opts: { url: string } }).opts.url, nodeId: "node-0", poolSize: 2, leaseMs: 300 });
    opened.push(revived);
    await expect(revived.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["late"] })).rejects.toThrow(/no longer submitting/);
    await b!.recordSubmit(again!, "sms", { kind: "ok", carrierMessageIds: ["k"] });
    expect((await b!.getMessage(m!.id))!.state).toBe("submitted");
  });

  test("an event leased by one node is not sent by another; the next event of a message waits for the first", async () => {
    const clock = { t: 1000 };
    const [a, b] = await nodes(2, clock);
    await a!.accept(input("e1"));
    const [m] = await a!.claimDue("sms", 10);
    await a!.recordSubmit(m!, "sms", { kind: "permanent", code: "x", message: "no", fallbackEligible: false });
    const [ea] = await a!.dueEvents(clock.t, 10);
    expect(ea).toBeDefined();
    expect(await b!.dueEvents(clock.t, 10)).toEqual([]);
    await a!.eventsDelivered([ea!.seq]);
    expect(await b!.dueEvents(clock.t, 10)).toEqual([]);
    expect(await a!.eventStats()).toEqual([]);
  });

  test("a live node's claim is not taken over by another node until its lease has run out", async () => {
    const clock = { t: 1000 };
    const [a, b] = await nodes(2, clock);
    await a!.accept(input("lv"));
    const [m] = await a!.claimDue("sms", 10);
    expect(await b!.recoverInFlight()).toBe(0);
    clock.t += 30_000;
    expect(await b!.recoverInFlight()).toBe(0);
    expect((await b!.getMessage(m!.id))!.state).toBe("submitting");
    clock.t += 1;
    expect(await b!.recoverInFlight()).toBe(1);
    expect((await b!.getMessage(m!.id))!.state).toBe("failed");
    await expect(a!.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["late"] })).rejects.toThrow(/no longer submitting/);
  });

  test("a message back in the queue (a retry) wakes the other nodes' dispatchers; a claim wakes none", async () => {
    const clock = { t: 1000 };
    const [a, b] = await nodes(2, clock);
    const heard: string[] = [];
    const hear = (n: number) => new Promise<void>((resolve) => b!.watch(() => heard.length >= n && resolve()));
    b!.watch((kind) => heard.push(kind));
    const upToMarker = hear(2);
    await a!.accept(input("wk"));
    const [m] = await a!.claimDue("sms", 10);
    // Notifications reach a listener in commit order: once this one is heard, any the claim sent has been.
    await a!.recordInbound("a", "https://x.example/mo", { carrier: "sms", channel: "sms", carrierMessageId: "mo-wk", from: "1", to: "2", text: "t", media: [], timestamp: 1 });
    await upToMarker;
    expect(heard).toEqual(["sms", "events"]);
    // Without the NOTIFY this waits until the test's timeout fails it.
    const retried = hear(3);
    await a!.recordSubmit(m!, "sms", { kind: "temporary", code: "x:busy", message: "busy" });
    await retried;
    expect(heard).toEqual(["sms", "events", "sms"]);
  });

  test("a node's heartbeat is shared: every node sees the others", async () => {
    const [a] = await nodes(3, { t: 1000 });
    expect((await a!.nodes()).map((n) => n.id)).toEqual(["node-0", "node-1", "node-2"]);
  });
});
