// "A 200 is on disk", and replays and webhooks wait for the disk: each fsync of the WAL is the real
// fdatasync, but the one covering the write under test is held (test/support/held-sync.ts) while the
// test looks at what has left the gateway. Real HTTP on loopback, a real webhook sink, real SQLite files.
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { startApp, type App } from "../../src/app.ts";
import { durations } from "../../src/config.ts";
import { createMetrics } from "../../src/observe/metrics.ts";
import { Outbox } from "../../src/pipeline/outbox.ts";
import { StorageUnavailable } from "../../src/store/index.ts";
import { GroupCommit, openDatabase } from "../../src/store/sqlite/db.ts";
import { SqliteStore } from "../../src/store/sqlite/store.ts";
import { ACME_KEY, ACME_SECRET, post, sendBody, sqlite, tempDir, testConfig, waitFor } from "../support/app.ts";
import { HeldSync, watchDurableWaits } from "../support/held-sync.ts";
import { scrape } from "../support/metrics.ts";
import { startSink } from "../support/sink.ts";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function gateway(overrides: Record<string, unknown> = {}, now?: () => number): Promise<{ app: App; held: HeldSync }> {
  const held = new HeldSync();
  const app = await startApp(testConfig(tempDir(), overrides), { log: pino({ level: "silent" }), walSync: held, now });
  cleanup.push(async () => {
    await held.releaseAll();
    await app.stop();
  });
  return { app, held };
}

/** The answers counted by the gateway for /mms with this status (counted as each answer is made). */
async function answered(app: App, status: number): Promise<number> {
  return (await scrape(app.url)).get("gateway_http_requests_total", { endpoint: "/mms", status: String(status) });
}

function committed(app: App, requestId: string): () => boolean {
  // Committed, maybe not yet durable: read straight from the file (the store's own reads wait for the disk).
  return () => sqlite(app.store).db.query("SELECT 1 FROM dedup WHERE account_id = 'acme' AND request_id = ?").get(requestId) !== null;
}

describe("nothing is told before the fsync covering it", () => {
  test("a 200, and the replay of a retry sent meanwhile, only after the fsync covering the write", async () => {
    const { app, held } = await gateway();
    const accepts = spyOn(app.store, "accept");
    const body = sendBody();
    const hold = held.hold("accept", committed(app, body.request_id as string));
    const first = post(app.url, "/mms", body).then((r) => (held.timeline.push("200:first"), r));
    await waitFor("the fsync covering the write to start, or the answer", () => hold.started || held.timeline.includes("200:first"));
    expect(held.timeline).toEqual([]);
    // The retry's dedup insert commits in a later group (flushed on the next setImmediate), which
    // waits behind the held fsync.
    const retry = post(app.url, "/mms", body).then((r) => (held.timeline.push("200:retry"), r));
    await waitFor("the retry to reach the store", () => accepts.mock.calls.length === 2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await answered(app, 200)).toBe(0);

    await hold.release();
    const [a, b] = await Promise.all([first, retry]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.json).toEqual(a.json);
    expect(held.timeline[0]).toBe("fsynced:accept");
    expect(held.timeline.slice(1).sort()).toEqual(["200:first", "200:retry"]);
  });

  test("a retry replayed under 429 waits for the fsync covering the original", async () => {
    // One request per second and a clock that stands still: the retry takes the 429 replay path.
    const t0 = Date.now();
    const { app, held } = await gateway({ accounts: [{ id: "acme", headers: { "Chan-Api-Key": ACME_KEY }, callback_secret: ACME_SECRET, rate_limit: 1 }] }, () => t0);
    const waits = watchDurableWaits(sqlite(app.store).writer);
    const body = sendBody();
    const hold = held.hold("accept", committed(app, body.request_id as string));
    const first = post(app.url, "/mms", body).then((r) => (held.timeline.push("200:first"), r));
    await waitFor("the fsync covering the write to start, or the answer", () => hold.started || held.timeline.includes("200:first"));
    expect(held.timeline).toEqual([]);
    const retry = post(app.url, "/mms", body).then((r) => (held.timeline.push("200:replay"), r));
    await waitFor("the replay to read the stored answer and wait", () => waits.length > 0);
    expect(await answered(app, 200)).toBe(0);
    expect(waits.some((w) => w.pending)).toBe(true);

    await hold.release();
    const [a, b] = await Promise.all([first, retry]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.json).toEqual(a.json);
    expect(held.timeline[0]).toBe("fsynced:accept");
  });

  test("a webhook leaves only after the fsync covering its event, also one committed while the outbox waited", async () => {
    // The outbox on its own (no dispatcher or housekeeping writing meanwhile): the only commits are the
    // test's two events and the outbox's own bookkeeping.
    const sink = startSink(ACME_SECRET);
    cleanup.push(() => sink.stop());
    const held = new HeldSync();
    // A clock that stands still: an event committed while the outbox waits is due in that same round.
    const t0 = Date.now();
    const now = () => t0;
    const store = SqliteStore.open(join(tempDir(), "g.db"), { now, retryBaseMs: 50, retryMaxMs: 500, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy: "at-most-once", walSync: held });
    const outbox = new Outbox({
      store,
      secrets: new Map([["acme", ACME_SECRET]]),
      log: pino({ level: "silent" }),
      metrics: createMetrics(),
      now,
      isRefusal: () => false,
      maxAgeMs: durations(testConfig(tempDir())).webhookMaxAgeMs,
      settings: testConfig(tempDir()).webhooks,
      post: async (url, headers, body, timeoutMs) => ({ status: (await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(timeoutMs) })).status }),
    });
    cleanup.push(async () => {
      await held.releaseAll();
      await outbox.stop(5000);
      await store.close();
    });
    outbox.start();
    const waits = watchDurableWaits(store.writer);
    const urls = [`${sink.url}/e0`, `${sink.url}/e1`];
    const inStore = (url: string) => () => store.db.query("SELECT 1 FROM events WHERE url = ? AND state = 'pending'").get(url) !== null;
    const inbound = (n: number) => ({ carrier: "mmsc", channel: "sms" as const, carrierMessageId: `mo-${n}`, from: "15550001", to: "15550002", text: `mo ${n}`, media: [], timestamp: Date.now() });
    const arrived = (n: number) => sink.events.some((e) => e.carrier_message_id === `mo-${n}`);

    // e0 is committed, its fsync held, and the outbox woken: it must wait for the disk.
    const hold0 = held.hold("e0", inStore(urls[0]!));
    void store.recordInbound("acme", urls[0]!, inbound(0));
    await waitFor("the fsync covering e0 to start", () => hold0.started);
    outbox.wake(0);
    await waitFor("the outbox to wait for the disk, or e0 to arrive", () => arrived(0) || waits.some((w) => w.pending));
    expect(arrived(0)).toBe(false);

    // e1 commits during that wait; its own fsync is held. Waiting first and reading after would send it.
    const hold1 = held.hold("e1", inStore(urls[1]!));
    void store.recordInbound("acme", urls[1]!, inbound(1));
    await waitFor("e1 to commit", inStore(urls[1]!));
    const e1Commit = store.writer.commits;
    await hold0.release();
    await waitFor("the fsync covering e1 to start", () => hold1.started);
    await waitFor("e0 to arrive", () => arrived(0));
    await waitFor("the outbox to wait for e1's fsync, or e1 to arrive", () => arrived(1) || waits.some((w) => w.pending && w.commits >= e1Commit));
    expect(arrived(1)).toBe(false);

    await hold1.release();
    await waitFor("e1 to arrive", () => arrived(1));
    expect(held.timeline).toEqual(["fsynced:e0", "fsynced:e1"]);
  });
});

describe("after a failed fsync", () => {
  test("every later write is refused with 503 and Retry-After, until the process exits", async () => {
    const { app, held } = await gateway();
    const exits: unknown[] = [];
    // The gateway exits here (app.ts); the test process must live on to look.
    sqlite(app.store).writer.onFsyncFailure = (e) => exits.push(e);
    const first = sendBody();
    const hold = held.hold("accept", committed(app, first.request_id as string));
    const a = post(app.url, "/mms", first);
    await waitFor("the fsync covering the write to start", () => hold.started);
    // Committed while the fsync that fails runs: the next fsync would succeed, and prove nothing.
    const second = sendBody();
    const meanwhile = post(app.url, "/mms", second);
    await waitFor("the second write to commit", committed(app, second.request_id as string));
    hold.fail(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }));

    for (const r of [await a, await meanwhile, await post(app.url, "/mms", sendBody()), await post(app.url, "/mms", first)]) {
      expect(r.status).toBe(503);
      expect(r.headers.get("retry-after")).toBe("2");
      expect(r.json.error.code).toBe("storage_unavailable");
    }
    expect(exits).toHaveLength(1);
    expect(await answered(app, 200)).toBe(0);
    expect((await fetch(`${app.url}/readyz`)).status).toBe(503);
  });

  test("the writer refuses writes and durable waits, and a later fsync that succeeds settles nothing", async () => {
    const dir = tempDir();
    const held = new HeldSync();
    const db = openDatabase(join(dir, "w.db"));
    const writer = new GroupCommit(db, held);
    cleanup.push(() => {
      writer.drain();
      db.close();
    });
    db.run("CREATE TABLE t (x INTEGER)");
    const outcomes: unknown[] = [];
    const settled = <T>(p: Promise<T>) => p.then((v) => outcomes.push(v ?? "resolved"), (e) => outcomes.push(e));
    const hold = held.hold("first", () => writer.commits > 0);
    void settled(writer.write(() => db.run("INSERT INTO t VALUES (1)")));
    await waitFor("the first fsync to start", () => hold.started);
    void settled(writer.whenDurable());
    void settled(writer.write(() => db.run("INSERT INTO t VALUES (2)")));
    await waitFor("the second write to commit", () => writer.commits >= 2);
    hold.fail(new Error("EIO"));
    // The second write's own fsync runs now, and succeeds: that proves nothing after the failure.
    void settled(writer.write(() => 1));
    void settled(writer.whenDurable());
    await waitFor("every write and wait to end", () => outcomes.length === 5);
    for (const outcome of outcomes) expect(outcome).toBeInstanceOf(StorageUnavailable);
    expect(writer.healthy).toBe(false);
  });
});

describe("the gateway's own fsync", () => {
  test("a write that changed nothing has no fsync of its own, yet is told only once the commits before it are on disk", async () => {
    const held = new HeldSync();
    const db = openDatabase(join(tempDir(), "w.db"));
    const writer = new GroupCommit(db, held);
    cleanup.push(async () => {
      await held.releaseAll();
      writer.drain();
      db.close();
    });
    db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)");
    let syncs = 0;
    const sync = held.sync.bind(held);
    held.sync = (fd, lone, done) => (syncs++, sync(fd, lone, done));

    await writer.write(() => db.run("INSERT INTO t VALUES (1)"));
    expect(await writer.write(() => db.query("INSERT OR IGNORE INTO t VALUES (1)").run().changes)).toBe(0);
    expect(syncs).toBe(1);

    // Behind a held fsync, a write that only reads what that fsync covers waits for it.
    const order: string[] = [];
    const hold = held.hold("insert 2", () => db.query("SELECT 1 FROM t WHERE x = 2").get() !== null);
    const insert = writer.write(() => db.run("INSERT INTO t VALUES (2)")).then(() => order.push("insert"));
    await waitFor("the fsync covering the insert to start", () => hold.started);
    const read = writer.write(() => db.query("SELECT x FROM t WHERE x = 2").get()).then((row) => order.push(`read ${JSON.stringify(row)}`));
    for (let turn = 0; turn < 3; turn++) await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]);
    await hold.release();
    await Promise.all([insert, read]);
    expect(order).toEqual(["insert", 'read {"x":2}']);
    expect(syncs).toBe(2);
  });

  test("a write that throws leaves nothing behind, alone or in a group, and the others of its group are kept", async () => {
    const db = openDatabase(join(tempDir(), "w.db"));
    const writer = new GroupCommit(db);
    cleanup.push(() => {
      writer.drain();
      db.close();
    });
    db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)");
    const failing = (x: number) => () => {
      db.run("INSERT INTO t VALUES (?)", [x]);
      throw new Error(`refused ${x}`);
    };
    await expect(writer.write(failing(1))).rejects.toThrow("refused 1");
    const group = await Promise.allSettled([writer.write(() => db.run("INSERT INTO t VALUES (2)")), writer.write(failing(3)), writer.write(() => db.run("INSERT INTO t VALUES (4)"))]);
    expect(group.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(db.query("SELECT x FROM t ORDER BY x").all()).toEqual([{ x: 2 }, { x: 4 }]);
  });

  test("a write resolves only after fdatasync of the WAL returned, lone or in a group", async () => {
    const dir = tempDir();
    const path = join(dir, "w.db");
    const db = openDatabase(path);
    const writer = new GroupCommit(db);
    cleanup.push(() => {
      writer.drain();
      db.close();
    });
    db.run("CREATE TABLE t (x INTEGER)");
    const order: string[] = [];
    const walIno = () => fs.statSync(`${path}-wal`).ino;
    const realSync = fs.fdatasyncSync;
    const realAsync = fs.fdatasync;
    const syncSpy = spyOn(fs, "fdatasyncSync").mockImplementation((fd) => {
      realSync(fd);
      order.push(fs.fstatSync(fd).ino === walIno() ? "fsynced wal" : "fsynced other");
    });
    const asyncSpy = spyOn(fs, "fdatasync").mockImplementation(((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) =>
      realAsync(fd, (e) => {
        order.push(fs.fstatSync(fd).ino === walIno() ? "fsynced wal" : "fsynced other");
        cb(e);
      })) as typeof fs.fdatasync);
    cleanup.push(() => {
      syncSpy.mockRestore();
      asyncSpy.mockRestore();
    });

    await writer.write(() => db.run("INSERT INTO t VALUES (1)")).then(() => order.push("lone write resolved"));
    expect(order).toEqual(["fsynced wal", "lone write resolved"]);
    expect(syncSpy).toHaveBeenCalledTimes(1);

    order.length = 0;
    await Promise.all([1, 2, 3].map((x) => writer.write(() => db.run("INSERT INTO t VALUES (?)", [x])).then(() => order.push("grouped write resolved"))));
    expect(order).toEqual(["fsynced wal", "grouped write resolved", "grouped write resolved", "grouped write resolved"]);
    expect(asyncSpy).toHaveBeenCalledTimes(1);
  });
});
