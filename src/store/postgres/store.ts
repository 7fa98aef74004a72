// The PostgreSQL store: several nodes share one database. The same decisions as every engine (domain/),
// applied per transaction; what differs is how nodes stay out of each other's way:
// - the dedup key is unique in the database, and a 200 goes out only after COMMIT;
// - due messages are claimed with FOR UPDATE SKIP LOCKED and a lease (node, lease_until) the node renews
//   while it lives; once a lease runs out another node applies the in-flight policy;
// - a receipt and the submit answer naming its id take the same advisory lock, so a receipt arriving
//   at another node mid-commit is either matched or held where the commit finds it;
// - outbox events are leased to the node sending them; a message's next event waits for the last one;
// - NOTIFY wakes the other nodes, polling stays the truth (a lost LISTEN connection stalls nothing).
//
// This file is the driver's face: opening, the node's heartbeat and take-over, health, and the Store
// interface, made of the driver's parts (intake, dispatch, receipts, outbox, admin, media; parts.ts binds them).
import type { NodeInfo, Store, WorkKind } from "../index.ts";
import { bind, mediaOf, type Bound, type MediaMethods } from "../parts.ts";
import * as admin from "./admin.ts";
import * as bindLeases from "./bind-leases.ts";
import { channelName, connect, migratePostgres, PostgresCore, type PostgresOptions, type Sql } from "./core.ts";
import * as dispatch from "./dispatch.ts";
import * as intake from "./intake.ts";
import { PostgresMedia } from "./media.ts";
import * as outbox from "./outbox.ts";
import * as receipts from "./receipts.ts";

export { connect, migratePostgres, type PostgresOptions };

// The parts' methods, bound in the constructor.
type Parts = Bound<typeof intake> & Bound<typeof dispatch> & Bound<typeof receipts> & Bound<typeof outbox> & Bound<typeof admin> & Bound<typeof bindLeases> & MediaMethods;
export interface PostgresStore extends Parts {}

export class PostgresStore implements Store {
  /** Writes run on a pool of connections: a claim may start before an accept queued earlier commits. */
  readonly writesInOrder = false;
  private readonly c: PostgresCore;
  private timer: ReturnType<typeof setInterval> | null = null;
  private listeners: ((kind: WorkKind) => void)[] = [];
  private closed = false;

  private constructor(
    private readonly sql: Sql,
    private readonly opts: PostgresOptions,
  ) {
    this.c = new PostgresCore(sql, opts);
    const parts: Parts = { ...bind(this.c, intake), ...bind(this.c, dispatch), ...bind(this.c, receipts), ...bind(this.c, outbox), ...bind(this.c, admin), ...bind(this.c, bindLeases), ...mediaOf(new PostgresMedia(this.c)) };
    Object.assign(this, parts);
  }

  static async open(opts: PostgresOptions): Promise<PostgresStore> {
    const sql = connect(opts.url, opts.poolSize);
    try {
      await migratePostgres(sql);
    } catch (e) {
      await sql.end({ timeout: 1 });
      throw e;
    }
    const store = new PostgresStore(sql, opts);
    if (opts.nodeId === null) return store;
    await store.heartbeat(true);
    store.timer = setInterval(() => void store.heartbeat(false), Math.max(100, Math.floor(store.c.leaseMs / 3)));
    store.timer.unref?.();
    await store.listen();
    return store;
  }

  /**
   * NOTIFY is a hint: postgres.js listens again after a lost connection but gives up if the server is
   * still away, so a heartbeat that ends an outage listens anew; polling covers the gap meanwhile.
   */
  private async listen(): Promise<void> {
    await this.sql
      .listen(channelName, (payload) => {
        for (const l of this.listeners) l(payload as WorkKind);
      })
      .catch(() => {});
  }

  /**
   * Every third of a lease: renew this node's claims, say it is alive, refresh the cluster-wide queue
   * count, and take over work whose node stopped renewing. A success also ends an outage.
   */
  private async heartbeat(starting: boolean): Promise<void> {
    if (this.closed) return;
    const c = this.c;
    try {
      const now = c.now();
      const me = this.opts.nodeId!;
      await this.sql`INSERT INTO nodes (id, started_at, seen_at) VALUES (${me}, ${now}, ${now}) ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at${starting ? this.sql`, started_at = EXCLUDED.started_at` : this.sql``}`;
      if (!starting) {
        await this.sql`UPDATE messages SET lease_until = ${now + c.leaseMs} WHERE state = 'submitting' AND lease_node = ${me}`;
        // A webhook slower than a lease must not let another node post to the same URL meanwhile.
        await this.sql`UPDATE events SET lease_until = ${now + c.leaseMs} WHERE state = 'pending' AND lease_node = ${me}`;
      }
      const [q] = await this.sql`SELECT COUNT(*)::int AS n FROM messages WHERE due_at IS NOT NULL AND state IN ('accepted', 'submitting')`;
      c.queued = q!.n as number;
      if (!c.ok) void this.listen();
      c.ok = true;
      if (!starting) await this.takeOverExpired();
    } catch (e) {
      c.failed(e);
    }
  }

  /** Messages left `submitting` by a node whose lease ran out: the in-flight policy decides. */
  private async takeOverExpired(): Promise<number> {
    const c = this.c;
    return c.tx(async (tx, done) => {
      const rows = await tx`SELECT * FROM messages WHERE state = 'submitting' AND lease_until < ${c.now()} ORDER BY lease_until LIMIT 1000 FOR UPDATE SKIP LOCKED`;
      return c.recoverClaims(tx, rows, done);
    });
  }

  watch(listener: (kind: WorkKind) => void): void {
    this.listeners.push(listener);
  }

  queuedCount(): number {
    return this.c.queued;
  }

  whenDurable(): Promise<void> {
    // COMMIT returned with synchronous_commit on: whatever was read is durable on the server.
    return Promise.resolve();
  }

  healthy(): boolean {
    return this.c.ok;
  }

  lastError(): string | null {
    return this.c.error;
  }

  private closing: Promise<void> | null = null;

  close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.closing ??= this.sql.end({ timeout: 5 });
    return this.closing;
  }

  /** The nodes sharing this database; one silent for a lease has had its claims taken over. */
  nodes(): Promise<NodeInfo[]> {
    const since = this.c.now() - this.c.leaseMs;
    return this.c.read(async (sql) =>
      (await sql`SELECT id, started_at, seen_at FROM nodes ORDER BY id`).map((r) => ({
        id: r.id as string,
        startedAt: r.started_at as number,
        seenAt: r.seen_at as number,
        live: (r.seen_at as number) >= since,
      })),
    );
  }
}
