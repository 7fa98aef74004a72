// What every part of the PostgreSQL driver shares: the schema, the pool, transactions that tell their
// effects only once committed, and what is written inside other transactions (a decided transition, a
// receipt). The parts (intake, dispatch, receipts, outbox, admin, media) build on this; store.ts is the face.
//
// postgres.js (pure JS, bundles into the single binary) rather than Bun.sql: Bun's client has open
// issues around pool recovery after the server restarts and around LISTEN, both of which this needs.
import postgres from "postgres";
import type { CarrierReceipt } from "../../../adapters/carrier.ts";
import { decideInFlight, decideReceipt, waitsForCarrier, type Outcome, type Transition } from "../../domain/decisions.ts";
import { deliveryEvent, newId } from "../../domain/event.ts";
import type { StoredMessage } from "../../domain/message.ts";
import { chooseCandidate, IdBaseLearning, type ReceiptCandidate } from "../../domain/receipt-match.ts";
import { StorageUnavailable, type AcceptInput, type ReceiptResult, type StoredResponse, type StoreOptions } from "../index.ts";
import { historyLine, toCandidate, toMessage } from "../rows.ts";
import type { Groups } from "./group.ts";
import initial from "./migrations/001_initial.sql" with { type: "text" };
import routing from "./migrations/002_routing.sql" with { type: "text" };
import media from "./migrations/003_media.sql" with { type: "text" };
import outboxKeyLeases from "./migrations/004_outbox_key_leases.sql" with { type: "text" };
import bindLeases from "./migrations/005_bind_leases.sql" with { type: "text" };

const migrations: string[] = [initial, routing, media, outboxKeyLeases, bindLeases];

export interface PostgresOptions extends StoreOptions {
  url: string;
  /** This node's name in leases and heartbeats; null for a short-lived tool that claims nothing. */
  nodeId: string | null;
  /** Connections in this node's pool. */
  poolSize?: number;
}

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;

export const channelName = "gateway_work";

/**
 * A claim's lease. It need not outlast a submit (a live node renews it every third), only a stall of
 * the node; it bounds how long a killed node's in-flight messages wait for another node.
 */
const defaultLeaseMs = 10_000;

/** Errors that say the database is unreachable or refusing work right now (not a bug in a query). */
function isUnavailable(e: unknown): boolean {
  const code = (e as { code?: string })?.code ?? "";
  return (
    /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|CONNECTION_CLOSED|CONNECTION_ENDED|CONNECTION_DESTROYED|CONNECT_TIMEOUT)$/.test(code) ||
    /^(08|53|57P0[1-4])/.test(code) // connection exception, insufficient resources, shutdown
  );
}

/** Applies the schema under an advisory lock, so nodes starting together migrate once. */
export async function migratePostgres(sql: Sql): Promise<{ from: number; to: number }> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtextextended('mms-gateway:migrate', 0))`;
    await tx`CREATE TABLE IF NOT EXISTS gateway_schema (version INTEGER NOT NULL)`;
    const [row] = await tx`SELECT version FROM gateway_schema`;
    const current = (row?.version as number | undefined) ?? 0;
    if (current > migrations.length) {
      throw new Error(`database schema version ${current} is newer than this gateway (${migrations.length}); refusing to run an older binary on it`);
    }
    for (let v = current; v < migrations.length; v++) await tx.unsafe(migrations[v]!);
    if (row) await tx`UPDATE gateway_schema SET version = ${migrations.length}`;
    else await tx`INSERT INTO gateway_schema (version) VALUES (${migrations.length})`;
    return { from: current, to: migrations.length };
  });
}

export function connect(url: string, poolSize = 16): Sql {
  return postgres(url, {
    max: poolSize,
    connect_timeout: 5,
    idle_timeout: 60,
    onnotice: () => {},
    // BIGINT columns hold epoch milliseconds: numbers, not strings.
    types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
    // A 200 means committed and flushed on the server, whatever the server's default says.
    connection: { synchronous_commit: "on", application_name: "mms-gateway" },
  });
}

/** What a transaction changes outside the database: applied only once it has committed. */
export interface Effects {
  outcomes: Outcome[];
  /** Change in the messages waiting for a carrier (the high-water count). */
  queued: number;
}

export class PostgresCore {
  readonly now: () => number;
  readonly random: () => number;
  readonly leaseMs: number;
  /** A tool without a node id claims nothing; its name only marks rows it could never hold. */
  readonly node: string;
  readonly idBases = new IdBaseLearning();
  queued = 0;
  /** Accepts committed in groups (intake.ts), made at the first accept. */
  accepts: Groups<AcceptInput, StoredResponse> | null = null;
  ok = true;
  error: string | null = null;

  constructor(
    readonly sql: Sql,
    readonly opts: PostgresOptions,
  ) {
    this.now = opts.now;
    this.random = opts.random ?? Math.random;
    this.leaseMs = opts.leaseMs ?? defaultLeaseMs;
    this.node = opts.nodeId ?? "(tool)";
  }

  failed(e: unknown): void {
    this.ok = false;
    this.error = (e as Error)?.message ?? String(e);
  }

  /** A transaction; outcomes and wake-ups are told only once it committed. */
  tx<T>(fn: (tx: Tx, done: Effects) => Promise<T>): Promise<T> {
    return this.committing((done) => this.sql.begin((tx) => fn(tx, done)) as Promise<T>);
  }

  /** One statement that is its own transaction (autocommit): no BEGIN and COMMIT round trips. */
  statement<T>(fn: (sql: Sql, done: Effects) => Promise<T>): Promise<T> {
    return this.committing((done) => fn(this.sql, done));
  }

  private async committing<T>(fn: (done: Effects) => Promise<T>): Promise<T> {
    const done: Effects = { outcomes: [], queued: 0 };
    let value: T;
    try {
      value = await fn(done);
    } catch (e) {
      if (isUnavailable(e)) {
        this.failed(e);
        throw new StorageUnavailable(e);
      }
      throw e;
    }
    this.ok = true;
    this.queued += done.queued;
    if (this.opts.onOutcome) for (const o of done.outcomes) this.opts.onOutcome(o);
    return value;
  }

  async read<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    try {
      return await fn(this.sql);
    } catch (e) {
      if (isUnavailable(e)) {
        this.failed(e);
        throw new StorageUnavailable(e);
      }
      throw e;
    }
  }

  // ---- inside a transaction: a decided transition, a receipt -------------------------------

  /** Claims left `submitting` (read FOR UPDATE), whoever held them: the in-flight policy decides. */
  async recoverClaims(tx: Tx, rows: readonly Record<string, unknown>[], done: Effects): Promise<number> {
    for (const row of rows) {
      const m = toMessage(row);
      await this.apply(tx, m, decideInFlight(m, this.opts, this.now()), done, row.lease_node as string);
    }
    return rows.length;
  }

  /**
   * Writes a decided transition as a compare-and-set on the state it was decided from (and, from
   * `submitting`, on the lease: a node whose lease was taken over cannot apply its late answer).
   * Its statements go out pipelined, in one round trip: should the compare-and-set lose, the error
   * rolls the whole transaction back, the statements sent after it included.
   */
  async apply(tx: Tx, m: StoredMessage, t: Transition, done: Effects, leaseHolder: string = this.node): Promise<void> {
    const now = this.now();
    const claiming = t.to === "submitting";
    const cas = tx`UPDATE messages SET state = ${t.to}, due_at = ${t.dueAt}, updated_at = ${now}, attempts = attempts + ${t.attemptsDelta},
        channel = ${t.channel}, fallback = ${t.fallback}, carrier = COALESCE(${t.carrier}, carrier), last_error = COALESCE(${t.error ? JSON.stringify(t.error) : null}, last_error),
        expires_at = COALESCE(${t.expiresAt ?? null}::bigint, expires_at), history = history || ${historyLine(now, t.to, t.detail)},
        lease_node = ${claiming ? this.node : null}, lease_until = ${claiming ? now + this.leaseMs : null}
      WHERE id = ${m.id} AND state = ${t.from} AND (state <> 'submitting' OR lease_node = ${leaseHolder})`.execute();
    const sent: Promise<unknown>[] = [];
    Object.assign(m, { state: t.to, channel: t.channel, fallback: t.fallback, attempts: m.attempts + t.attemptsDelta });
    if (t.carrier !== null) m.carrier = t.carrier;
    if (t.routing) {
      sent.push(tx`UPDATE messages SET pinned_carrier = ${t.routing.pinned}, refused_carriers = ${t.routing.refused.join(",")} WHERE id = ${m.id}`.execute());
      Object.assign(m, t.routing);
    }
    if (t.expiresAt !== undefined) m.expiresAt = t.expiresAt;
    if (t.fallbackReason !== undefined) {
      m.fallbackReason = t.fallbackReason;
      sent.push(tx`UPDATE messages SET fallback_reason = ${t.fallbackReason} WHERE id = ${m.id}`.execute());
    }
    if (t.noMms) {
      sent.push(
        tx`INSERT INTO capability (number, reason, created_at, until) VALUES (${t.noMms.number}, ${t.noMms.reason}, ${now}, ${t.noMms.until})
          ON CONFLICT (number) DO UPDATE SET reason = excluded.reason, until = excluded.until`.execute(),
      );
    }
    if (t.to === "accepted") sent.push(tx`SELECT pg_notify(${channelName}, ${t.channel})`.execute());
    if (t.event) {
      const eventId = newId("evt", now, this.random);
      const body = deliveryEvent(m, t.event.status, eventId, t.event.at, t.event.carrierMessageId, t.event.error);
      sent.push(
        tx`INSERT INTO events (event_id, message_id, account_id, kind, url, body, state, attempts, created_at, updated_at, due_at)
          VALUES (${eventId}, ${m.id}, ${m.accountId}, ${t.event.status}, ${m.payload.callback_url}, ${JSON.stringify(body)}, 'pending', 0, ${now}, ${now}, ${now})`.execute(),
        tx`SELECT pg_notify(${channelName}, 'events')`.execute(),
      );
    }
    const [r] = await Promise.all([cas, ...sent]);
    if ((r as { count: number }).count !== 1) throw new Error(`message ${m.id} is no longer ${t.from}`);
    if (waitsForCarrier(t.from) !== waitsForCarrier(t.to)) done.queued += waitsForCarrier(t.to) ? 1 : -1;
    if (t.outcome) done.outcomes.push(t.outcome);
  }

  /** A receipt inside the caller's transaction (also a held one, from recordSubmit). */
  async applyReceiptIn(tx: Tx, r: CarrierReceipt, arrivedAt: number, done: Effects): Promise<ReceiptResult> {
    if (r.outcome === "pending") return "ignored";
    const readings = this.idBases.narrow(r.carrier, r.readings ?? [{ key: r.carrierMessageId, base: "same" }]);
    // Each step's statements pipelined (one round trip), run by the server in the order sent: the
    // lookups after the lock, the outcome and the parts after the message row's lock.
    const locked = lockKeys(tx, r.carrier, readings.map((x) => x.key)).execute();
    const links = readings.map(
      (reading) => tx`SELECT c.message_id, c.outcome, m.payload, m.updated_at FROM carrier_ids c LEFT JOIN messages m ON m.id = c.message_id
        WHERE c.carrier = ${r.carrier} AND c.carrier_id = ${reading.key}`.execute(),
    );
    const [, ...linked] = await Promise.all([locked, ...links]);
    const found: ReceiptCandidate[] = [];
    readings.forEach((reading, i) => {
      const [link] = linked[i]!;
      if (link) found.push(toCandidate(reading, link));
    });
    const match = chooseCandidate(found, { to: r.to, arrivedAt });
    if (match.kind !== "match") {
      await Promise.all(
        readings.map((reading) => tx`INSERT INTO early_receipts (carrier, carrier_id, receipt, received_at) VALUES (${r.carrier}, ${reading.key}, ${JSON.stringify(r)}, ${arrivedAt})`.execute()),
      );
      return "unmatched";
    }
    const { key, messageId } = match.candidate;
    if (match.evidence) this.idBases.record(r.carrier, match.candidate.base);
    // The message row first: two parts' receipts on two nodes then see each other's outcome.
    // The outcome is set only where none is yet (none set: a duplicate); the parts are read after it.
    const [[row], recorded, partRows] = await Promise.all([
      tx`SELECT * FROM messages WHERE id = ${messageId} FOR UPDATE`.execute(),
      tx`UPDATE carrier_ids SET outcome = ${r.outcome} WHERE carrier = ${r.carrier} AND carrier_id = ${key} AND outcome IS NULL`.execute(),
      tx`SELECT carrier_id, outcome FROM carrier_ids WHERE message_id = ${messageId} AND carrier = ${r.carrier} ORDER BY part`.execute(),
    ]);
    if (recorded.count !== 1) return "duplicate";
    if (!row) return "ignored";
    const m = toMessage(row);
    if (m.state !== "submitted") return "duplicate";
    const parts = partRows.map((p) => ({
      carrierId: p.carrier_id as string,
      outcome: p.outcome as CarrierReceipt["outcome"] | null,
    }));
    const t = decideReceipt(m, r, key, parts, this.opts.noMmsMemoryMs);
    if (t) await this.apply(tx, m, t, done);
    return "applied";
  }
}

/**
 * Serialises a receipt and the submit answer naming the same carrier id, whichever nodes they reach:
 * the receipt then either finds the id or is held where the submit's transaction looks. Sorted, so two
 * transactions taking several keys cannot deadlock.
 */
export function lockKeys(tx: Tx, carrier: string, keys: string[]) {
  // One statement: unnest yields the keys in array order, and the locks are taken in that order.
  const locks = [...new Set(keys)].sort().map((k) => `${carrier}\n${k}`);
  return tx`SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(${locks}::text[]) AS k`;
}
