// The store on a real SQLite file, with a fake clock: dedup window, purge, recovery, receipts.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import initialSchema from "../../src/store/sqlite/migrations/001_initial.sql" with { type: "text" };
import type { MessagePayload } from "../../src/domain/message.ts";
import { SqliteStore } from "../../src/store/sqlite/store.ts";
import { tempDir } from "../support/app.ts";
import { canChattr, skipWithout } from "../support/capability.ts";
import { seeded } from "../support/random.ts";

function open(clock: { t: number }, inFlightPolicy: "at-most-once" | "at-least-once" = "at-most-once") {
  return SqliteStore.open(join(tempDir(), "g.db"), { now: () => clock.t, retryBaseMs: 1000, retryMaxMs: 60000, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy, random: seeded(1) });
}
const payload: MessagePayload = { from: "1", to: "12025550123", subject: "", text: "hi", fallback_text: "fb", media: [], custom_data: "cd", callback_url: "https://x.example/cb", metadata: null };
const input = (requestId: string | null) => ({ accountId: "a", requestId, channel: "sms" as const, payload, bodyHash: "h", expiresAt: 10_000_000 });

describe("store", () => {
  test("copies of one request_id in the same group commit make one message", async () => {
    const store = open({ t: 1000 });
    const answers = await Promise.all(Array.from({ length: 50 }, () => store.accept(input("r1"))));
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    expect(answers.filter((a) => !a.replay)).toHaveLength(1);
    expect(store.writer.commits).toBe(1);
    expect((store.db.query("SELECT COUNT(*) AS n FROM messages").get() as { n: number }).n).toBe(1);
    expect(store.queuedCount()).toBe(1);
  });

  test("purge works in chunks until nothing old is left", async () => {
    const clock = { t: 1000 };
    const store = open(clock);
    for (let i = 0; i < 7; i++) await store.accept(input(`p${i}`));
    clock.t += 10_000;
    expect(await store.purge(clock.t, 0, 2)).toEqual({ dedup: 7, messages: 0, events: 0 });
    expect((store.db.query("SELECT COUNT(*) AS n FROM dedup").get() as { n: number }).n).toBe(0);
  });

  test("validity expiry while waiting for a retry: failed with gateway:validity_expired and exactly one event", async () => {
    const clock = { t: 1000 };
    const finals: string[] = [];
    const store = SqliteStore.open(join(tempDir(), "g.db"), {
      now: () => clock.t,
      retryBaseMs: 1000,
      retryMaxMs: 1000,
      receiptWindowMs: 3_600_000,
      intermediateEvents: false,
      inFlightPolicy: "at-most-once",
      random: seeded(1),
      onOutcome: (o) => finals.push(o.kind === "final" ? o.status : o.kind),
    });
    await store.accept({ ...input("v1"), expiresAt: 100_000 });
    const [m] = await store.claimDue("sms", 10);
    await store.recordSubmit(m!, "sms", { kind: "temporary", code: "x:busy", message: "busy" });
    // The retry is due before the validity ends, but the gateway comes back to it only afterwards.
    clock.t = 100_000;
    expect(await store.claimDue("sms", 10)).toHaveLength(0);
    const row = store.db.query("SELECT state, due_at, last_error FROM messages WHERE id = ?").get(m!.id) as { state: string; due_at: number | null; last_error: string };
    expect(row).toMatchObject({ state: "failed", due_at: null });
    expect(JSON.parse(row.last_error)).toMatchObject({ code: "gateway:validity_expired", message: expect.stringContaining("x:busy") });
    // Later passes of every loop find nothing more to do with it.
    clock.t += 10 * 3_600_000;
    expect(await store.claimDue("sms", 10)).toHaveLength(0);
    expect(await store.expireReceiptWindows(100)).toBe(0);
    expect(await store.recoverInFlight()).toBe(0);
    const events = store.db.query("SELECT body FROM events WHERE message_id = ?").all(m!.id) as { body: string }[];
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.body)).toMatchObject({ status: "failed", error: { code: "gateway:validity_expired" } });
    expect(finals).toEqual(["failed"]);
    expect(store.queuedCount()).toBe(0);
  });

  test("a submit in doubt (timeout, link lost) is not resent under at-most-once", async () => {
    const store = open({ t: 1000 });
    await store.accept(input("r10"));
    const [m] = await store.claimDue("sms", 10);
    const r = await store.recordSubmit(m!, "sms", { kind: "temporary", code: "smpp:timeout", message: "no answer", inDoubt: true });
    expect(r.final).toBe("failed");
    const row = store.db.query("SELECT last_error FROM messages WHERE id = ?").get(m!.id) as { last_error: string };
    expect(JSON.parse(row.last_error).code).toBe("gateway:in_flight_unknown");
  });

});

describe("background checkpoints", () => {
  test("the WAL is copied back by the worker and starts over under sustained writes (stays bounded)", async () => {
    const dir = tempDir();
    const store = SqliteStore.open(join(dir, "g.db"), {
      now: Date.now,
      retryBaseMs: 1000,
      retryMaxMs: 60000,
      receiptWindowMs: 3_600_000,
      intermediateEvents: false,
      inFlightPolicy: "at-most-once",
      backgroundCheckpoints: true,
    });
    const big = { ...payload, custom_data: "c".repeat(2000) };
    let n = 0;
    // Keep writing until the writer has restarted the WAL twice (bounded: at most 60,000 writes).
    while (store.checkpointer!.restarts < 2 && n < 60_000) {
      await Promise.all(Array.from({ length: 64 }, () => store.accept({ ...input(`w${n++}`), payload: big })));
    }
    expect(store.checkpointer!.checkpoints).toBeGreaterThan(0);
    expect(store.checkpointer!.restarts).toBeGreaterThanOrEqual(2);
    // journal_size_limit cuts the file back after a restart: far below what was written.
    const walBytes = Bun.file(join(dir, "g.db-wal")).size;
    expect(walBytes).toBeLessThanOrEqual(96 * 1024 * 1024);
    expect((store.db.query("SELECT COUNT(*) AS n FROM messages").get() as { n: number }).n).toBe(n);
    await store.close();
  }, 120000);
});

test.skipIf(skipWithout(canChattr(), "chattr +i on the temp directory", "integration/store.test.ts"))("a failed background checkpoint does not stop the later ones", async () => {
  const dir = tempDir();
  const path = join(dir, "g.db");
  const store = SqliteStore.open(path, { now: Date.now, retryBaseMs: 1000, retryMaxMs: 60000, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy: "at-most-once", backgroundCheckpoints: true });
  let n = 0;
  const writeSome = async (rounds: number) => {
    for (let r = 0; r < rounds; r++) await Promise.all(Array.from({ length: 16 }, () => store.accept(input(`c${n++}`))));
  };
  await writeSome(40);
  // The database file refuses writes (immutable): the worker's checkpoints fail, the WAL still takes commits.
  expect(Bun.spawnSync(["chattr", "+i", path]).exitCode).toBe(0);
  try {
    const errorsBefore = store.writer.lastError;
    await writeSome(80);
    expect(store.writer.lastError).not.toBe(errorsBefore); // a checkpoint failed and said so
  } finally {
    Bun.spawnSync(["chattr", "-i", path]);
  }
  const after = store.checkpointer!.checkpoints;
  await writeSome(80);
  expect(store.checkpointer!.checkpoints).toBeGreaterThan(after);
  await store.close();
}, 60000);

describe("schema", () => {
  test("state columns refuse a state the domain does not know", async () => {
    const store = open({ t: 1000 });
    const r = await store.accept(input("k1"));
    expect(() => store.db.run("UPDATE messages SET state = 'lost' WHERE id = ?", [r.messageId!])).toThrow(/CHECK constraint/);
    await store.claimDue("sms", 10);
    expect(() => store.db.run("UPDATE messages SET channel = 'fax'")).toThrow(/CHECK constraint/);
    await store.close();
  });

  test("a database at schema version 1 keeps its rows through the migrations since (checks, routing, media)", async () => {
    const path = join(tempDir(), "v1.db");
    const v1 = new Database(path, { create: true, strict: true });
    v1.run(initialSchema);
    v1.run("PRAGMA user_version = 1");
    v1.run("INSERT INTO messages (id, account_id, request_id, channel, fallback, state, attempts, created_at, updated_at, due_at, expires_at, history, payload) VALUES ('msg_a', 'a', 'r', 'sms', 0, 'accepted', 0, 1, 1, 1, 9, '', ?)", [JSON.stringify(payload)]);
    v1.run("INSERT INTO events (event_id, message_id, account_id, kind, url, body, state, attempts, created_at, updated_at, due_at) VALUES ('evt_a', 'msg_a', 'a', 'failed', 'u', '{}', 'pending', 0, 1, 1, 1)");
    v1.close();
    const store = SqliteStore.open(path, { now: () => 5, retryBaseMs: 1000, retryMaxMs: 60000, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy: "at-most-once" });
    expect((store.db.query("PRAGMA user_version").get() as { user_version: number }).user_version).toBe(4);
    expect(store.queuedCount()).toBe(1);
    expect((await store.getMessage("msg_a"))?.fallbackReason).toBeNull();
    expect((await store.dueEvents(5, 10)).map((e) => e.eventId)).toEqual(["evt_a"]);
    expect(() => store.db.run("UPDATE messages SET state = 'lost'")).toThrow(/CHECK constraint/);
    await store.close();
  });
});

describe("intake answers", () => {
  test("a new message, its replay (same or other body), and a request without request_id", async () => {
    const store = open({ t: 1000 });
    expect(await store.lookupRequest("a", "i1", "h")).toBeNull();
    const first = await store.accept(input("i1"));
    expect(first).toMatchObject({ status: 200, replay: false, bodyDiffers: false });
    expect(await store.accept(input("i1"))).toMatchObject({ status: 200, replay: true, bodyDiffers: false, messageId: first.messageId, body: first.body });
    expect(await store.accept({ ...input("i1"), bodyHash: "other" })).toMatchObject({ replay: true, bodyDiffers: true, messageId: first.messageId });
    // Without a request_id nothing is deduplicated: two messages, no key.
    const a = await store.accept(input(null));
    const b = await store.accept(input(null));
    expect(a.replay || b.replay).toBe(false);
    expect(a.messageId).not.toBe(b.messageId);
    expect(store.db.query("SELECT COUNT(*) AS n FROM dedup").get()).toEqual({ n: 1 });
    expect(store.db.query("SELECT COUNT(*) AS n FROM messages").get()).toEqual({ n: 3 });
  });

  test("a remembered refusal is replayed for the same request_id", async () => {
    const store = open({ t: 1000 });
    expect(await store.rememberRefusal("a", "bad", 400, '{"error":1}', "h")).toEqual({ status: 400, body: '{"error":1}', replay: false, bodyDiffers: false, messageId: null });
    expect(await store.rememberRefusal("a", "bad", 400, '{"error":2}', "h2")).toEqual({ status: 400, body: '{"error":1}', replay: true, bodyDiffers: true, messageId: null });
    expect(await store.lookupRequest("a", "bad", "h")).toMatchObject({ status: 400, replay: true, bodyDiffers: false });
  });
});

describe("recordSubmit: what it reports back to the dispatcher", () => {
  const openAt = (clock: { t: number }, o: { inFlightPolicy?: "at-most-once" | "at-least-once"; intermediateEvents?: boolean } = {}) =>
    SqliteStore.open(join(tempDir(), "g.db"), { now: () => clock.t, retryBaseMs: 1000, retryMaxMs: 60000, receiptWindowMs: 3_600_000, intermediateEvents: o.intermediateEvents ?? false, inFlightPolicy: o.inFlightPolicy ?? "at-most-once", random: seeded(1) });
  const state = (store: SqliteStore, id: string) => store.db.query("SELECT state, channel, due_at, last_error FROM messages WHERE id = ?").get(id) as { state: string; channel: string; due_at: number | null; last_error: string | null };

  test("accepted by the carrier: no final yet; the receipt window starts now; the intermediate event names the carrier id", async () => {
    const clock = { t: 1000 };
    const store = openAt(clock, { intermediateEvents: true });
    await store.accept(input("s1"));
    const [m] = await store.claimDue("sms", 10);
    expect(await store.recordSubmit(m!, "sms", { kind: "ok", carrierMessageIds: ["c1"] })).toEqual({ fallback: false, final: null });
    expect(state(store, m!.id)).toMatchObject({ state: "submitted", due_at: 1000 + 3_600_000 });
    expect(await store.nextDue("submitted", "sms")).toBe(1000 + 3_600_000);
    expect(await store.nextDue("accepted", "sms")).toBeNull();
    clock.t += 3_599_999;
    expect(await store.expireReceiptWindows(10)).toBe(0);
    const events = store.db.query("SELECT body FROM events").all() as { body: string }[];
    expect(events.map((e) => JSON.parse(e.body))).toMatchObject([{ status: "sent", carrier_message_id: "c1" }]);
  });

  test("in doubt: failed under at-most-once, retried with backoff under at-least-once", async () => {
    for (const policy of ["at-most-once", "at-least-once"] as const) {
      const clock = { t: 1000 };
      const store = openAt(clock, { inFlightPolicy: policy });
      await store.accept(input("d1"));
      const [m] = await store.claimDue("sms", 10);
      const r = await store.recordSubmit(m!, "sms", { kind: "temporary", code: "smpp:timeout", message: "no answer", inDoubt: true, retryAfterMs: 5000 });
      if (policy === "at-most-once") {
        expect(r).toEqual({ fallback: false, final: "failed" });
        expect(state(store, m!.id).state).toBe("failed");
      } else {
        expect(r).toEqual({ fallback: false, final: null });
        expect(state(store, m!.id)).toMatchObject({ state: "accepted", due_at: 6000 });
      }
    }
  });

  test("temporary: retried while the retry falls inside the validity, failed when it would fall at or after its end", async () => {
    const clock = { t: 1000 };
    const store = openAt(clock);
    await store.accept({ ...input("t1"), expiresAt: 6001 });
    await store.accept({ ...input("t2"), expiresAt: 6000 });
    const claimed = await store.claimDue("sms", 10);
    const [a, b] = ["t1", "t2"].map((r) => claimed.find((m) => m.requestId === r));
    const busy = { kind: "temporary" as const, code: "x:busy", message: "busy", retryAfterMs: 5000 };
    expect(await store.recordSubmit(a!, "sms", busy)).toEqual({ fallback: false, final: null });
    expect(await store.recordSubmit(b!, "sms", busy)).toEqual({ fallback: false, final: "failed" });
    expect(state(store, b!.id).state).toBe("failed");
  });

  test("permanent: an MMS the handset cannot take goes to its fallback SMS; an SMS, or no fallback text, fails", async () => {
    const store = openAt({ t: 1000 });
    await store.accept({ ...input("f1"), channel: "mms" });
    await store.accept({ ...input("f2"), channel: "mms", payload: { ...payload, fallback_text: "" } });
    await store.accept(input("f3"));
    const refused = { kind: "permanent" as const, code: "mm7:2002", message: "cannot take MMS", fallbackEligible: true };
    const claimed = await store.claimDue("mms", 10);
    const [fb, none] = ["f1", "f2"].map((r) => claimed.find((m) => m.requestId === r));
    expect(await store.recordSubmit(fb!, "mms", refused)).toEqual({ fallback: true, final: null });
    expect(state(store, fb!.id)).toMatchObject({ state: "accepted", channel: "sms" });
    expect(await store.recordSubmit(none!, "mms", refused)).toEqual({ fallback: false, final: "failed" });
    const smsClaimed = await store.claimDue("sms", 10);
    const [sms, fallback] = ["f3", "f1"].map((r) => smsClaimed.find((m) => m.requestId === r));
    expect(await store.recordSubmit(sms!, "sms", refused)).toEqual({ fallback: false, final: "failed" });
    expect(state(store, sms!.id)).toMatchObject({ state: "failed", channel: "sms" });
    expect(await store.recordSubmit(fallback!, "sms", { kind: "permanent", code: "x:no", message: "no", fallbackEligible: false })).toEqual({ fallback: false, final: "failed" });
  });
});

describe("receipts, purge and outcomes in detail", () => {
  const counted = (clock: { t: number }) => {
    const outcomes: string[] = [];
    const store = SqliteStore.open(join(tempDir(), "g.db"), {
      now: () => clock.t,
      retryBaseMs: 1000,
      retryMaxMs: 60000,
      receiptWindowMs: 3_600_000,
      intermediateEvents: false,
      inFlightPolicy: "at-most-once",
      random: seeded(1),
      onOutcome: (o) => outcomes.push(o.kind === "final" ? o.status : o.kind),
    });
    return { store, outcomes };
  };
  const submitted = async (store: SqliteStore, requestId: string, channel: "sms" | "mms", ids: string[]) => {
    await store.accept({ ...input(requestId), channel });
    const m = (await store.claimDue(channel, 10)).find((x) => x.requestId === requestId)!;
    await store.recordSubmit(m, channel, { kind: "ok", carrierMessageIds: ids });
    return m.id;
  };
  const eventOf = (store: SqliteStore, id: string) => (store.db.query("SELECT body FROM events WHERE message_id = ?").all(id) as { body: string }[]).map((e) => JSON.parse(e.body));

  test("a failed receipt: its code names the error (message defaults to the code); an SMS never falls back; the carrier is recorded", async () => {
    const { store, outcomes } = counted({ t: 1000 });
    const id = await submitted(store, "rc1", "sms", ["k1"]);
    expect((store.db.query("SELECT carrier FROM messages WHERE id = ?").get(id) as { carrier: string }).carrier).toBe("sms");
    await store.applyReceipt({ carrier: "sms", carrierMessageId: "k1", outcome: "failed", code: "smpp:UNDELIV", fallbackEligible: true, timestamp: 2 });
    expect(await store.getMessage(id)).toMatchObject({ state: "failed", channel: "sms", fallback: false });
    expect(eventOf(store, id)).toMatchObject([{ status: "failed", error: { code: "smpp:UNDELIV", message: "smpp:UNDELIV" } }]);
    // An MMS refused by its report goes to the fallback SMS, and that is reported as a fallback.
    const mms = await submitted(store, "rc2", "mms", ["k2"]);
    await store.applyReceipt({ carrier: "mms", carrierMessageId: "k2", outcome: "failed", code: "mm7:NotSupported", message: "cannot show MMS", fallbackEligible: true, timestamp: 3 });
    expect(await store.getMessage(mms)).toMatchObject({ state: "accepted", channel: "sms", fallback: true });
    expect(outcomes).toEqual(["failed", "fallback"]);
  });

  test("all parts reported, one of them only 'unknown': final `sent`, not delivered", async () => {
    const { store } = counted({ t: 1000 });
    const id = await submitted(store, "rc3", "sms", ["u1", "u2"]);
    await store.applyReceipt({ carrier: "sms", carrierMessageId: "u1", outcome: "delivered", timestamp: 2 });
    await store.applyReceipt({ carrier: "sms", carrierMessageId: "u2", outcome: "unknown", timestamp: 3 });
    expect((await store.getMessage(id))!.state).toBe("sent");
    expect(eventOf(store, id)).toMatchObject([{ status: "sent", carrier_message_id: "u1" }]);
  });

  test("purge removes finished messages with their carrier ids and delivered events, in chunks, and counts them", async () => {
    const clock = { t: 1000 };
    const { store } = counted(clock);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = await submitted(store, `pg${i}`, "sms", [`pk${i}`]);
      await store.applyReceipt({ carrier: "sms", carrierMessageId: `pk${i}`, outcome: "delivered", timestamp: 2 });
      ids.push(id);
    }
    const seqs = (store.db.query("SELECT seq FROM events").all() as { seq: number }[]).map((e) => e.seq);
    await store.eventsDelivered(seqs);
    await store.accept(input("pg-open")); // still open: kept
    clock.t += 10_000;
    expect(await store.purge(0, clock.t, 2)).toEqual({ dedup: 0, messages: 5, events: 5 });
    expect(store.db.query("SELECT COUNT(*) AS n FROM messages").get()).toEqual({ n: 1 });
    expect(store.db.query("SELECT COUNT(*) AS n FROM carrier_ids").get()).toEqual({ n: 0 });
    expect(store.db.query("SELECT COUNT(*) AS n FROM events").get()).toEqual({ n: 0 });
    for (const id of ids) expect(await store.getMessage(id)).toBeNull();
  });
});
