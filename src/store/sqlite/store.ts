// The SQLite driver's face: opening, closing, health, and the Store interface, made of the driver's parts
// (intake, dispatch, receipts, outbox, admin, media; parts.ts binds them). Every write goes
// through the group-commit writer (core.ts), and every state change writes its webhook event in the same
// transaction (the outbox).
import type { Database } from "bun:sqlite";
import type { NodeInfo, Store } from "../index.ts";
import { bind, mediaOf, type Bound, type MediaMethods } from "../parts.ts";
import * as admin from "./admin.ts";
import * as bindLeases from "./bind-leases.ts";
import { Checkpointer } from "./checkpointer.ts";
import { SqliteCore, type SqliteOptions } from "./core.ts";
import { migrate, openDatabase, type GroupCommit } from "./db.ts";
import * as dispatch from "./dispatch.ts";
import * as intake from "./intake.ts";
import * as outbox from "./outbox.ts";
import * as receipts from "./receipts.ts";

export type { SqliteOptions };

/** Applies the migrations to the file (creating it) and closes it. */
export function migrateSqlite(path: string): { from: number; to: number } {
  const db = openDatabase(path, false);
  try {
    return migrate(db);
  } finally {
    db.close();
  }
}

// The parts' methods, bound in the constructor.
type Parts = Bound<typeof intake> & Bound<typeof dispatch> & Bound<typeof receipts> & Bound<typeof outbox> & Bound<typeof admin> & Bound<typeof bindLeases> & MediaMethods;
export interface SqliteStore extends Parts {}

export class SqliteStore implements Store {
  /** One writer, its queue in order: see Store.writesInOrder. */
  readonly writesInOrder = true;
  private readonly c: SqliteCore;
  readonly writer: GroupCommit;
  private readonly startedAt: number;
  checkpointer: Checkpointer | null = null;

  constructor(
    readonly db: Database,
    private readonly opts: SqliteOptions,
  ) {
    this.c = new SqliteCore(db, opts);
    this.writer = this.c.writer;
    this.startedAt = opts.now();
    const parts: Parts = { ...bind(this.c, intake), ...bind(this.c, dispatch), ...bind(this.c, receipts), ...bind(this.c, outbox), ...bind(this.c, admin), ...bind(this.c, bindLeases), ...mediaOf(this.c.media) };
    Object.assign(this, parts);
  }

  static open(path: string, opts: SqliteOptions): SqliteStore {
    const store = new SqliteStore(openDatabase(path), opts);
    if (opts.backgroundCheckpoints && path !== ":memory:") {
      store.db.run("PRAGMA wal_autocheckpoint = 0");
      const checkpointer = new Checkpointer(store.db, path, (message) => {
        store.writer.lastError = `checkpoint: ${message}`;
      });
      store.checkpointer = checkpointer;
      store.writer.onDurable = () => checkpointer.committed();
    }
    return store;
  }

  async close(o: { checkpoint?: boolean } = {}): Promise<void> {
    if (o.checkpoint === false) {
      // An admin command beside a running gateway: a checkpoint would wait on its readers for nothing.
      this.writer.flush();
      this.db.close();
      return;
    }
    this.writer.drain();
    await this.checkpointer?.close();
    this.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    this.db.close();
  }

  watch(): void {
    // One node: whoever makes work due wakes its loop directly.
  }

  whenDurable(): Promise<void> {
    return this.writer.whenDurable();
  }

  healthy(): boolean {
    return this.writer.healthy;
  }

  lastError(): string | null {
    return this.writer.lastError;
  }

  /** Messages waiting for a carrier (the queue the high-water mark is about). */
  queuedCount(): number {
    return this.c.queued;
  }

  /** One box: this process is the only node, and alive while it can answer. */
  async nodes(): Promise<NodeInfo[]> {
    const id = this.opts.nodeId;
    return id ? [{ id, startedAt: this.startedAt, seenAt: this.opts.now(), live: true }] : [];
  }
}
