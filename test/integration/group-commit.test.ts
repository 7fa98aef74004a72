// The SQLite writer's promises on a real file: one failing write does not take its group with it, a
// storage failure takes the whole group and says so (readyz), and the schema only moves forward.
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { closeSync, openSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { StorageUnavailable } from "../../src/store/index.ts";
import { fdatasyncWal, GroupCommit, isStorageError, openDatabase } from "../../src/store/sqlite/db.ts";
import { migrateSqlite } from "../../src/store/sqlite/store.ts";
import { tempDir, waitFor } from "../support/app.ts";
import { HeldSync } from "../support/held-sync.ts";

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c();
});

function writerOn(path = join(tempDir(), "w.db"), held?: HeldSync): { db: Database; writer: GroupCommit; path: string } {
  const db = openDatabase(path);
  const writer = new GroupCommit(db, held);
  cleanup.push(() => {
    writer.drain();
    db.close();
  });
  db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)");
  return { db, writer, path };
}

const rows = (db: Database) => (db.query("SELECT x FROM t ORDER BY x").all() as { x: number }[]).map((r) => r.x);
const settle = <T>(p: Promise<T>) => p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e }));

describe("a group of writes", () => {
  test("a write that fails is undone alone, half-done rows included; the others of its group commit with their results", async () => {
    const { db, writer } = writerOn();
    const [a, b, c] = await Promise.all([
      settle(writer.write(() => (db.run("INSERT INTO t VALUES (1)"), "first"))),
      settle(
        writer.write(() => {
          db.run("INSERT INTO t VALUES (2)");
          db.run("INSERT INTO t VALUES (1)"); // a duplicate: SQLITE_CONSTRAINT, not the storage's fault
        }),
      ),
      settle(writer.write(() => (db.run("INSERT INTO t VALUES (3)"), "third"))),
    ]);
    expect(a).toEqual({ ok: true, v: "first" });
    expect(c).toEqual({ ok: true, v: "third" });
    expect(b.ok).toBe(false);
    expect((b as { e: unknown }).e).not.toBeInstanceOf(StorageUnavailable);
    expect(String((b as { e: unknown }).e)).toContain("UNIQUE");
    expect(rows(db)).toEqual([1, 3]);
    expect(writer.commits).toBe(1);
    expect(writer.healthy).toBe(true);
  });

  test("with the database locked by another connection: the whole group is refused as storage unavailable, and the writer is unhealthy until a write that changes data is durable", async () => {
    const { db, writer, path } = writerOn();
    db.run("PRAGMA busy_timeout = 20");
    const other = new Database(path);
    cleanup.push(() => other.close());
    other.run("BEGIN IMMEDIATE");
    const refused = await Promise.all([settle(writer.write(() => db.run("INSERT INTO t VALUES (1)"))), settle(writer.write(() => db.run("INSERT INTO t VALUES (2)")))]);
    for (const r of refused) {
      expect(r.ok).toBe(false);
      expect((r as { e: unknown }).e).toBeInstanceOf(StorageUnavailable);
    }
    expect(writer.healthy).toBe(false);
    expect(writer.lastError).toBe("database is locked");
    expect(writer.commits).toBe(0);
    // A lone write that touches nothing is refused at BEGIN too: it is not run outside a transaction.
    let ran = false;
    expect(await settle(writer.write(() => (ran = true)))).toMatchObject({ ok: false });
    expect(ran).toBe(false);
    expect(writer.lastError).toBe("database is locked");
    other.run("ROLLBACK");

    // A write that changes nothing (an idle housekeeping pass) proves nothing about the disk.
    await writer.write(() => db.query("SELECT COUNT(*) FROM t").get());
    expect(writer.healthy).toBe(false);
    await writer.write(() => db.run("INSERT INTO t VALUES (3)"));
    expect(writer.healthy).toBe(true);
    expect(rows(db)).toEqual([3]);
  });

  test("an in-memory database has no WAL to fsync: writes and durable waits still settle", async () => {
    const db = openDatabase(":memory:");
    const writer = new GroupCommit(db);
    cleanup.push(() => {
      writer.drain();
      db.close();
    });
    db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)");
    expect(await writer.write(() => (db.run("INSERT INTO t VALUES (7)"), "done"))).toBe("done");
    await writer.whenDurable();
    const queued = writer.write(() => (db.run("INSERT INTO t VALUES (8)"), "queued"));
    writer.drain();
    expect(await queued).toBe("queued");
    expect(rows(db)).toEqual([7, 8]);
    expect(writer.healthy).toBe(true);
  });

  test("only SQLite's storage failures count as storage errors", () => {
    const db = new Database(":memory:");
    cleanup.push(() => db.close());
    db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)");
    db.run("INSERT INTO t VALUES (1)");
    const thrown = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e;
      }
      throw new Error("did not throw");
    };
    expect(isStorageError(thrown(() => db.run("INSERT INTO t VALUES (1)")))).toBe(false);
    expect(isStorageError(thrown(() => db.run("SELECT nope FROM t")))).toBe(false);
    expect(isStorageError(new Error("SQLITE_FULL"))).toBe(false);
    const path = join(tempDir(), "ro.db");
    new Database(path, { create: true }).close();
    const ro = new Database(path, { readonly: true });
    cleanup.push(() => ro.close());
    expect(isStorageError(thrown(() => ro.run("CREATE TABLE x (y)")))).toBe(true);
  });
});

describe("a write's own failures", () => {
  test("a lone write that fails commits nothing: no commit counted, no fsync", async () => {
    const held = new HeldSync();
    const { db, writer } = writerOn(undefined, held);
    const failing = writer.write(() => {
      db.run("INSERT INTO t VALUES (1)");
      throw new Error("refused");
    });
    await expect(failing).rejects.toThrow("refused");
    expect([writer.commits, held.lones, rows(db)]).toEqual([0, [], []]);
  });

  test("a storage error inside one write fails its whole group as storage unavailable; the next write works", async () => {
    const { db, writer, path } = writerOn();
    const ro = new Database(path, { readonly: true });
    cleanup.push(() => ro.close());
    const group = await Promise.all([
      settle(writer.write(() => db.run("INSERT INTO t VALUES (1)"))),
      settle(writer.write(() => ro.run("INSERT INTO t VALUES (2)"))), // SQLITE_READONLY: the storage's fault
      settle(writer.write(() => db.run("INSERT INTO t VALUES (3)"))),
    ]);
    for (const r of group) expect((r as { e: unknown }).e).toBeInstanceOf(StorageUnavailable);
    expect(writer.healthy).toBe(false);
    expect(rows(db)).toEqual([]);
    // The failed group's transaction was rolled back: the next one begins afresh.
    expect(await writer.write(() => (db.run("INSERT INTO t VALUES (4)"), "next"))).toBe("next");
    expect(rows(db)).toEqual([4]);
    expect(writer.healthy).toBe(true);
  });
});

describe("durability", () => {
  test("a new writer is healthy before its first write (readyz at start)", () => {
    expect(writerOn().writer.healthy).toBe(true);
  });

  test("a durable wait ends only with the fsync covering the last commit, not an earlier one still running", async () => {
    const held = new HeldSync();
    const { db, writer } = writerOn(undefined, held);
    cleanup.push(() => void held.releaseAll());
    const first = held.hold("first", () => writer.commits === 1);
    const a = writer.write(() => db.run("INSERT INTO t VALUES (1)"));
    await waitFor("the first fsync to start", () => first.started);
    const second = held.hold("second", () => writer.commits === 2);
    const b = writer.write(() => db.run("INSERT INTO t VALUES (2)"));
    await waitFor("the second write to commit", () => writer.commits === 2);
    let durable = false;
    const wait = writer.whenDurable().then(() => (durable = true));
    await first.release();
    await a;
    await waitFor("the second fsync to start", () => second.started);
    expect(durable).toBe(false);
    await second.release();
    await Promise.all([b, wait]);
    expect(durable).toBe(true);
    expect(held.timeline).toEqual(["fsynced:first", "fsynced:second"]);
  });

  test("closing commits and settles the writes still queued", async () => {
    const path = join(tempDir(), "d.db");
    const db = openDatabase(path);
    const writer = new GroupCommit(db);
    db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)");
    const queued = [writer.write(() => (db.run("INSERT INTO t VALUES (1)"), 1)), writer.write(() => (db.run("INSERT INTO t VALUES (2)"), 2))];
    writer.drain();
    db.close();
    expect(await Promise.all(queued)).toEqual([1, 2]);
    const again = new Database(path, { readonly: true });
    cleanup.push(() => again.close());
    expect(rows(again)).toEqual([1, 2]);
  });

  test("the database's directory is created when missing", () => {
    const path = join(tempDir(), "a", "b", "g.db");
    const db = openDatabase(path);
    cleanup.push(() => db.close());
    expect((db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
  });
});

/** How many descriptors this process holds on `file` (SQLite's own and the writer's). */
function openOn(file: string): number {
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false;
    }
  }).length;
}

describe("closing while an fsync runs on the helper thread", () => {
  test("the writes committed meanwhile are settled by drain's own fsync; the WAL stays open for the running one, which then settles its writes and lets it go", async () => {
    const held = new HeldSync();
    const { db, writer, path } = writerOn(undefined, held);
    cleanup.push(() => void held.releaseAll());
    const hold = held.hold("first", () => writer.commits === 1);
    const first = settle(writer.write(() => (db.run("INSERT INTO t VALUES (1)"), "first")));
    await waitFor("the first fsync to start", () => hold.started);
    // Two writes commit together behind it (one group), waiting for the next fsync.
    const second = Promise.all([settle(writer.write(() => (db.run("INSERT INTO t VALUES (2)"), "second"))), settle(writer.write(() => (db.run("INSERT INTO t VALUES (3)"), "third")))]);
    await waitFor("the second group to commit", () => writer.commits === 2);
    const wal = `${path}-wal`;
    const before = openOn(wal);
    writer.drain();
    expect(held.syncsNow).toBe(1);
    expect(await second).toEqual([
      { ok: true, v: "second" },
      { ok: true, v: "third" },
    ]);
    // The held fsync still has the writer's descriptor.
    expect(openOn(wal)).toBe(before);
    // A write committed after drain, while that fsync still runs, is settled when it returns.
    const late = settle(writer.write(() => (db.run("INSERT INTO t VALUES (4)"), "late")));
    await waitFor("the late write to commit", () => writer.commits === 3);
    await hold.release();
    expect(await first).toEqual({ ok: true, v: "first" });
    expect(await late).toEqual({ ok: true, v: "late" });
    expect(held.syncsNow).toBe(2);
    expect(writer.healthy).toBe(true);
    expect(openOn(wal)).toBe(before - 1);
    expect(rows(db)).toEqual([1, 2, 3, 4]);
  });

  test("closing with no fsync running lets the WAL go at once", async () => {
    const { db, writer, path } = writerOn();
    await writer.write(() => db.run("INSERT INTO t VALUES (1)"));
    const before = openOn(`${path}-wal`);
    writer.drain();
    expect(openOn(`${path}-wal`)).toBe(before - 1);
  });
});

describe("fsync failures", () => {
  test("a write queued when an fsync fails is refused without being run", async () => {
    const held = new HeldSync();
    const { db, writer } = writerOn(undefined, held);
    cleanup.push(() => void held.releaseAll());
    const hold = held.hold("first", () => writer.commits === 1);
    const first = settle(writer.write(() => db.run("INSERT INTO t VALUES (1)")));
    await waitFor("the first fsync to start", () => hold.started);
    let ran = false;
    const queued = settle(writer.write(() => ((ran = true), db.run("INSERT INTO t VALUES (2)"))));
    hold.fail(new Error("EIO"));
    expect((await queued as { e: unknown }).e).toBeInstanceOf(StorageUnavailable);
    expect((await first as { e: unknown }).e).toBeInstanceOf(StorageUnavailable);
    expect(ran).toBe(false);
    expect(rows(db)).toEqual([1]);
  });

  test("a second failed fsync does not report the failure again", async () => {
    const held = new HeldSync();
    const { db, writer } = writerOn(undefined, held);
    cleanup.push(() => void held.releaseAll());
    const failures: unknown[] = [];
    writer.onFsyncFailure = (e) => failures.push(e);
    const first = held.hold("first", () => writer.commits === 1);
    const a = settle(writer.write(() => db.run("INSERT INTO t VALUES (1)")));
    await waitFor("the first fsync to start", () => first.started);
    const second = held.hold("second", () => writer.commits === 2);
    const b = settle(writer.write(() => db.run("INSERT INTO t VALUES (2)")));
    await waitFor("the second write to commit", () => writer.commits === 2);
    first.fail(new Error("EIO 1"));
    await waitFor("the second fsync to start", () => second.started);
    second.fail(new Error("EIO 2"));
    for (const r of await Promise.all([a, b])) expect((r as { e: unknown }).e).toBeInstanceOf(StorageUnavailable);
    expect(failures.map((e) => (e as Error).message)).toEqual(["EIO 1"]);
  });

  test("an fsync failing at close refuses the writes it was to cover", async () => {
    const held = new HeldSync();
    const { db, writer } = writerOn(undefined, held);
    cleanup.push(() => void held.releaseAll());
    const hold = held.hold("first", () => writer.commits === 1);
    const first = settle(writer.write(() => db.run("INSERT INTO t VALUES (1)")));
    await waitFor("the first fsync to start", () => hold.started);
    const second = settle(writer.write(() => db.run("INSERT INTO t VALUES (2)")));
    await waitFor("the second write to commit", () => writer.commits === 2);
    held.failNow = new Error("EIO at close");
    writer.drain();
    expect((await second as { e: unknown }).e).toBeInstanceOf(StorageUnavailable);
    expect(writer.lastError).toBe("EIO at close");
    await hold.release();
    expect((await first as { e: unknown }).e).toBeInstanceOf(StorageUnavailable);
    // Nothing committed after the close: no last fsync.
    expect(held.syncsNow).toBe(0);
  });

  test("the last fsync after a close, for a write committed meanwhile, failing: that write is refused", async () => {
    const held = new HeldSync();
    const { db, writer } = writerOn(undefined, held);
    cleanup.push(() => void held.releaseAll());
    const hold = held.hold("first", () => writer.commits === 1);
    const first = settle(writer.write(() => db.run("INSERT INTO t VALUES (1)")));
    await waitFor("the first fsync to start", () => hold.started);
    writer.drain();
    const late = settle(writer.write(() => db.run("INSERT INTO t VALUES (2)")));
    await waitFor("the late write to commit", () => writer.commits === 2);
    held.failNow = new Error("EIO late");
    await hold.release();
    expect(await first).toEqual({ ok: true, v: expect.anything() });
    expect((await late as { e: unknown }).e).toBeInstanceOf(StorageUnavailable);
    expect(writer.lastError).toBe("EIO late");
  });
});

describe("the WAL's descriptor and the fsync's lone flag", () => {
  test("opened once, not once per write", async () => {
    const { db, writer, path } = writerOn();
    await writer.write(() => db.run("INSERT INTO t VALUES (1)"));
    const after = openOn(`${path}-wal`);
    for (const x of [2, 3, 4]) await writer.write(() => db.run("INSERT INTO t VALUES (?)", [x]));
    expect(openOn(`${path}-wal`)).toBe(after);
  });

  test("a temporary database (no file name) has no WAL to fsync either", async () => {
    const db = new Database("");
    const writer = new GroupCommit(db);
    cleanup.push(() => {
      writer.drain();
      db.close();
    });
    db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)");
    expect(await writer.write(() => (db.run("INSERT INTO t VALUES (1)"), "done"))).toBe("done");
    expect(writer.healthy).toBe(true);
  });

  test("an fsync is lone only for one commit of one write; two commits waiting together are not", async () => {
    const held = new HeldSync();
    const { db, writer } = writerOn(undefined, held);
    cleanup.push(() => void held.releaseAll());
    const hold = held.hold("first", () => writer.commits === 1);
    const a = writer.write(() => db.run("INSERT INTO t VALUES (1)"));
    await waitFor("the first fsync to start", () => hold.started);
    const b = writer.write(() => db.run("INSERT INTO t VALUES (2)"));
    await waitFor("the second commit", () => writer.commits === 2);
    const c = writer.write(() => db.run("INSERT INTO t VALUES (3)"));
    await waitFor("the third commit", () => writer.commits === 3);
    await hold.release();
    await Promise.all([a, b, c]);
    expect(held.lones).toEqual([true, false]);
    await Promise.all([writer.write(() => db.run("INSERT INTO t VALUES (4)")), writer.write(() => db.run("INSERT INTO t VALUES (5)"))]);
    expect(held.lones).toEqual([true, false, false]);
  });
});

describe("the gateway's fdatasync of the WAL", () => {
  test("a failing fsync is reported to its callback, lone (here) or on the helper thread; syncNow throws", async () => {
    const fd = openSync(join(tempDir(), "f"), "w");
    closeSync(fd); // fdatasync of a closed descriptor fails for real: EBADF
    const lone = await new Promise<unknown>((done) => fdatasyncWal.sync(fd, true, done));
    expect((lone as NodeJS.ErrnoException).code).toBe("EBADF");
    const grouped = await new Promise<unknown>((done) => fdatasyncWal.sync(fd, false, done));
    expect((grouped as NodeJS.ErrnoException).code).toBe("EBADF");
    expect(() => fdatasyncWal.syncNow(fd)).toThrow();
    const ok = openSync(join(tempDir(), "g"), "w");
    expect(await new Promise<unknown>((done) => fdatasyncWal.sync(ok, true, done))).toBeNull();
    closeSync(ok);
  });
});

describe("schema versions", () => {
  test("a new file is migrated from 0 to the latest; a second run has nothing to do", () => {
    const path = join(tempDir(), "m.db");
    const first = migrateSqlite(path);
    expect(first.from).toBe(0);
    expect(first.to).toBeGreaterThan(0);
    expect(migrateSqlite(path)).toEqual({ from: first.to, to: first.to });
  });

  test("a database newer than this gateway is refused and left as it is", () => {
    const path = join(tempDir(), "new.db");
    const latest = migrateSqlite(path).to;
    const db = new Database(path);
    db.run(`PRAGMA user_version = ${latest + 1}`);
    db.close();
    expect(() => openDatabase(path)).toThrow(/newer than this gateway/);
    const after = new Database(path, { readonly: true });
    cleanup.push(() => after.close());
    expect((after.query("PRAGMA user_version").get() as { user_version: number }).user_version).toBe(latest + 1);
  });
});
