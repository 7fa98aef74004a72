// Opening the database, migrations, and the group-commit writer every write goes through.
import { Database, SQLiteError } from "bun:sqlite";
import { closeSync, fdatasync, fdatasyncSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { StorageUnavailable } from "../index.ts";
import initial from "./migrations/001_initial.sql" with { type: "text" };
import stateChecks from "./migrations/002_state_checks.sql" with { type: "text" };
import routing from "./migrations/003_routing.sql" with { type: "text" };
import media from "./migrations/004_media.sql" with { type: "text" };

/** Versioned migrations, applied in order; `user_version` records how many have run. */
const migrations: string[] = [initial, stateChecks, routing, media];


/** How long a write waits for another connection's lock (an admin command) before SQLITE_BUSY. */
export const busyTimeoutMs = 5000;

export function openDatabase(path: string, migrated = true): Database {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { create: true, readwrite: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  // NORMAL: COMMIT itself does not fsync; GroupCommit fsyncs the WAL on a helper thread before any
  // write is reported done, so a 200 still survives a power cut, while the event loop keeps serving
  // requests during the fsync (they form the next group). SQLite fsyncs the WAL before every checkpoint.
  db.run("PRAGMA synchronous = NORMAL");
  db.run(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
  db.run("PRAGMA temp_store = MEMORY");
  db.run("PRAGMA cache_size = -32000");
  // After the WAL starts over, its file is cut back to this size instead of keeping its peak.
  db.run("PRAGMA journal_size_limit = 67108864");
  if (migrated) migrate(db);
  return db;
}

export function migrate(db: Database): { from: number; to: number } {
  const current = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  if (current > migrations.length) {
    throw new Error(`database schema version ${current} is newer than this gateway (${migrations.length}); refusing to run an older binary on it`);
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.run(migrations[v]!);
      db.run(`PRAGMA user_version = ${v + 1}`);
    }).immediate();
  }
  return { from: current, to: migrations.length };
}

/**
 * How the WAL reaches the disk. The gateway's is `fdatasyncWal`; a test passes one that holds each fsync
 * until released, to prove that nothing is told before the fsync covering it.
 */
export interface WalSync {
  /** Makes `fd` durable and calls `done` once it is (or failed), perhaps before returning. */
  sync(fd: number, lone: boolean, done: (error: unknown) => void): void;
  /** Makes `fd` durable before returning (closing). */
  syncNow(fd: number): void;
}

export const fdatasyncWal: WalSync = {
  sync(fd, lone, done) {
    if (!lone) return fdatasync(fd, done);
    // A lone write (nothing else was waiting) is fsynced right here: the hop to the helper thread and
    // back costs more than the few requests that could arrive meanwhile would gain.
    let error: unknown = null;
    try {
      fdatasyncSync(fd);
    } catch (e) {
      error = e;
    }
    done(error);
  },
  syncNow: (fd) => fdatasyncSync(fd),
};

interface Op {
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: writes queued while one turn of the event loop runs are committed together in one
 * transaction, flushed on setImmediate so a lone request waits for nothing but its own fsync. Each
 * write runs in its own savepoint, so one failing write does not take the others with it; a failing
 * COMMIT rejects them all with StorageUnavailable and nothing of them is kept.
 *
 * A write's promise settles only once the WAL holding it is fsynced. The fsync runs off the event
 * loop, one at a time; commits made meanwhile wait for the next one, which covers them all.
 *
 * A failed fsync ends the writer for good: these transactions are committed but maybe not on disk, and
 * Linux may drop the pages it could not write and report success on the next fsync, so nothing
 * committed since can be trusted either. Every later write and durable wait is refused
 * (StorageUnavailable → 503) until the process exits.
 */
/** A committed group waiting for its fsync. */
interface Committed {
  ops: Op[];
  results: { ok: boolean; v: unknown }[];
}

export class GroupCommit {
  private queue: Op[] = [];
  private scheduled = false;
  /**
   * False after a failed commit, true again after the next durable commit that changed data: a write
   * that changes nothing (an idle housekeeping pass) succeeds even on a full disk and proves nothing.
   */
  healthy = true;
  lastError: string | null = null;
  commits = 0;

  // Prepared once: db.run(sql) would compile these statements again for every write.
  private readonly begin;
  private readonly commit;
  private readonly rollback;
  private readonly savepoint;
  private readonly release;
  private readonly rollbackTo;
  private readonly changes;

  private walFd: number | null = null;
  private syncing = false;
  private closing = false;
  private awaitingSync: Committed[] = [];

  /** Called after each fsync that made commits durable (the background checkpointer counts them). */
  onDurable: (() => void) | null = null;
  /** Called when an fsync fails: committed data may not be on disk (see the class comment). */
  onFsyncFailure: ((e: unknown) => void) | null = null;
  private durableCommits = 0;
  private durableWaiters: { commits: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  /** Set by the first failed fsync and never cleared (see above). */
  private broken: StorageUnavailable | null = null;

  /**
   * Resolves once every transaction committed so far is on disk. What this connection reads can be
   * committed but not yet fsynced: whatever is told to the outside from a read waits for this first.
   */
  whenDurable(): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    const commits = this.commits;
    if (this.durableCommits >= commits) return Promise.resolve();
    return new Promise((resolve, reject) => this.durableWaiters.push({ commits, resolve, reject }));
  }

  constructor(
    private readonly db: Database,
    private readonly walSync: WalSync = fdatasyncWal,
  ) {
    this.begin = db.prepare("BEGIN IMMEDIATE");
    this.commit = db.prepare("COMMIT");
    this.rollback = db.prepare("ROLLBACK");
    this.savepoint = db.prepare("SAVEPOINT op");
    this.release = db.prepare("RELEASE op");
    this.rollbackTo = db.prepare("ROLLBACK TO op");
    this.changes = db.prepare("SELECT total_changes() AS n");
  }

  write<T>(run: () => T): Promise<T> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  flush(): void {
    this.scheduled = false;
    const ops = this.queue;
    this.queue = [];
    if (ops.length === 0) return;
    if (this.broken) {
      for (const op of ops) op.reject(this.broken);
      return;
    }
    const results: { ok: boolean; v: unknown }[] = [];
    const changesBefore = this.totalChanges();
    try {
      this.begin.run();
    } catch (e) {
      this.fail(e);
      for (const op of ops) op.reject(new StorageUnavailable(e));
      return;
    }
    // A lone write needs no savepoint: when it fails, rolling back the transaction undoes just it.
    const lone = ops.length === 1;
    let committed = true;
    try {
      for (const op of ops) {
        if (!lone) this.savepoint.run();
        try {
          results.push({ ok: true, v: op.run() });
          if (!lone) this.release.run();
        } catch (e) {
          if (isStorageError(e)) throw e;
          if (!lone) {
            this.rollbackTo.run();
            this.release.run();
          }
          results.push({ ok: false, v: e });
        }
      }
      if (lone && !results[0]!.ok) {
        this.rollback.run();
        committed = false;
      } else this.commit.run();
    } catch (e) {
      try {
        this.rollback.run();
      } catch {
        // the transaction may already be gone (SQLite rolls back itself on some I/O errors)
      }
      this.fail(e);
      for (const op of ops) op.reject(new StorageUnavailable(e));
      return;
    }
    if (!committed || this.totalChanges() === changesBefore) {
      // Wrote nothing (an empty claim, a replayed request): no fsync of its own. What it read may be
      // committed but not yet on disk, so it is told once every earlier commit is.
      const settle = () => this.settleOps(ops, results);
      if (this.durableCommits >= this.commits) settle();
      else this.durableWaiters.push({ commits: this.commits, resolve: settle, reject: settle });
      return;
    }
    this.commits++;
    this.awaitingSync.push({ ops, results });
    this.sync();
  }

  private totalChanges(): number {
    return (this.changes.get() as { n: number }).n;
  }

  /** Commits and settles every queued write now, fsyncing synchronously, and lets go of the WAL (for close). */
  drain(): void {
    this.flush();
    this.closing = true;
    const batches = this.awaitingSync;
    this.awaitingSync = [];
    let error: unknown = null;
    try {
      const fd = this.wal();
      if (fd !== null) this.walSync.syncNow(fd);
    } catch (e) {
      error = e;
    }
    this.settle(batches, error);
    // An fsync still running on the helper thread closes the descriptor when it returns.
    if (!this.syncing) this.closeWal();
  }

  private closeWal(): void {
    if (this.walFd !== null) closeSync(this.walFd);
    this.walFd = null;
  }

  private sync(): void {
    if (this.syncing || this.awaitingSync.length === 0) return;
    const batches = this.awaitingSync;
    this.awaitingSync = [];
    let fd: number | null;
    try {
      fd = this.wal();
    } catch (e) {
      this.settle(batches, e);
      return;
    }
    if (fd === null) {
      this.settle(batches, null);
      return;
    }
    this.syncing = true;
    this.walSync.sync(fd, batches.length === 1 && batches[0]!.ops.length === 1, (error) => {
      this.syncing = false;
      this.settle(batches, error);
      if (!this.closing) return this.sync();
      // Closed meanwhile: whatever was committed since is settled by one last fsync here.
      const late = this.awaitingSync.splice(0);
      let lateError: unknown = null;
      if (late.length) {
        try {
          this.walSync.syncNow(fd);
        } catch (e) {
          lateError = e;
        }
        this.settle(late, lateError);
      }
      this.closeWal();
    });
  }

  private settle(batches: Committed[], error: unknown): void {
    if (error) {
      this.fail(error);
      if (!this.broken) {
        this.broken = new StorageUnavailable(error);
        for (const w of this.durableWaiters.splice(0)) w.reject(this.broken);
        // Only a restart (recovery from what the disk really holds) is safe; the app decides how to do it.
        this.onFsyncFailure?.(error);
      }
    }
    for (const { ops, results } of batches) this.settleOps(ops, results);
    if (error || this.broken) return;
    this.healthy = true;
    this.durableCommits += batches.length;
    // After the writes themselves: what waited for them (reads, writes that changed nothing) came later.
    for (const w of this.durableWaiters.splice(0)) {
      if (this.durableCommits >= w.commits) w.resolve();
      else this.durableWaiters.push(w);
    }
    this.onDurable?.();
  }

  private settleOps(ops: Op[], results: { ok: boolean; v: unknown }[]): void {
    ops.forEach((op, i) => {
      const r = results[i]!;
      // Committed after a failed fsync: even a later fsync that succeeds proves nothing (see above).
      if (this.broken) op.reject(this.broken);
      else if (r.ok) op.resolve(r.v);
      else op.reject(r.v);
    });
  }

  /** The WAL's descriptor, opened once it exists (null for an in-memory database). */
  private wal(): number | null {
    if (this.walFd === null && this.db.filename !== ":memory:" && this.db.filename !== "") this.walFd = openSync(`${this.db.filename}-wal`, "r");
    return this.walFd;
  }

  private fail(e: unknown): void {
    this.healthy = false;
    this.lastError = (e as Error)?.message ?? String(e);
  }
}

const storageCodes = /^SQLITE_(FULL|READONLY|IOERR|BUSY|LOCKED|CANTOPEN|CORRUPT|NOTADB|PROTOCOL)/;
export function isStorageError(e: unknown): boolean {
  return e instanceof SQLiteError && storageCodes.test(e.code ?? "");
}
