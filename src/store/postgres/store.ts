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
// postgres.js (pure JS, bundles into the single binary) rather than Bun.sql: Bun's client has open
// issues around pool recovery after the server restarts and around LISTEN, both of which this needs.
import postgres from "postgres";
import type { CarrierReceipt, InboundMessage, SubmitResult } from "../../../adapters/carrier.ts";
import {
  decideAfterSubmit,
  decideClaim,
  decideInFlight,
  decideOperatorRetry,
  decideReceipt,
  decideReceiptWindowEnd,
  submitVerdict,
  verdictAfterHeldReceipts,
  waitsForCarrier,
  type Outcome,
  type SubmitVerdict,
  type Transition,
} from "../../domain/decisions.ts";
import { deliveryEvent, idFloor, inboundEvent, newId } from "../../domain/event.ts";
import type { Channel, MessagePayload, MessageState, StoredMessage } from "../../domain/message.ts";
import { chooseCandidate, heldKeys, IdBaseLearning, type ReceiptCandidate } from "../../domain/receipt-match.ts";
import {
  StorageUnavailable,
  type AcceptInput,
  type AdaptedMedia,
  type CapabilityEntry,
  type MediaLink,
  type NodeInfo,
  type PendingEvent,
  type ReceiptResult,
  type RetryFilter,
  type Row,
  type Store,
  type StoredResponse,
  type StoreOptions,
  type UnmatchedReceipt,
  type WebhookKey,
  type WorkKind,
} from "../index.ts";
import { historyLine, oncePerReceipt, toCandidate, toCapability, toLink, toMessage } from "../rows.ts";
import initial from "./migrations/001_initial.sql" with { type: "text" };
import routing from "./migrations/002_routing.sql" with { type: "text" };
import media from "./migrations/003_media.sql" with { type: "text" };
import outboxKeyLeases from "./migrations/004_outbox_key_leases.sql" with { type: "text" };

const migrations: string[] = [initial, routing, media, outboxKeyLeases];

export interface PostgresOptions extends StoreOptions {
  url: string;
  /** This node's name in leases and heartbeats; null for a short-lived tool that claims nothing. */
  nodeId: string | null;
  /** How long a claim holds without renewal; renewed every third of it. */
  leaseMs?: number;
  /** Connections in this node's pool. */
  poolSize?: number;
}

type Sql = postgres.Sql;
type Tx = postgres.TransactionSql;

const channelName = "gateway_work";

/**
 * A claim's lease. It need not outlast a submit (a live node renews it every third), only a stall of
 * the node; it bounds how long a killed node's in-flight messages wait for another node.
 */
const defaultLeaseMs = 10_000;

/** An adaptation's used_at is refreshed at most this often per node: a campaign's hits must not each be a write. */
const TOUCH_EVERY_MS = 3_600_000;

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
interface Effects {
  outcomes: Outcome[];
  /** Change in the messages waiting for a carrier (the high-water count). */
  queued: number;
}

export class PostgresStore implements Store {
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly leaseMs: number;
  /** A tool without a node id claims nothing; its name only marks rows it could never hold. */
  private readonly node: string;
  private readonly idBases = new IdBaseLearning();
  private queued = 0;
  private ok = true;
  private error: string | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private listeners: ((kind: WorkKind) => void)[] = [];
  private closed = false;
  private readonly touched = new Map<string, number>();

  private constructor(
    private readonly sql: Sql,
    private readonly opts: PostgresOptions,
  ) {
    this.now = opts.now;
    this.random = opts.random ?? Math.random;
    this.leaseMs = opts.leaseMs ?? defaultLeaseMs;
    this.node = opts.nodeId ?? "(tool)";
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
    store.timer = setInterval(() => void store.heartbeat(false), Math.max(100, Math.floor(store.leaseMs / 3)));
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
    try {
      const now = this.now();
      const me = this.opts.nodeId!;
      await this.sql`INSERT INTO nodes (id, started_at, seen_at) VALUES (${me}, ${now}, ${now}) ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at${starting ? this.sql`, started_at = EXCLUDED.started_at` : this.sql``}`;
      if (!starting) {
        await this.sql`UPDATE messages SET lease_until = ${now + this.leaseMs} WHERE state = 'submitting' AND lease_node = ${me}`;
        // A webhook slower than a lease must not let another node post to the same URL meanwhile.
        await this.sql`UPDATE events SET lease_until = ${now + this.leaseMs} WHERE state = 'pending' AND lease_node = ${me}`;
      }
      const [q] = await this.sql`SELECT COUNT(*)::int AS n FROM messages WHERE due_at IS NOT NULL AND state IN ('accepted', 'submitting')`;
      this.queued = q!.n as number;
      if (!this.ok) void this.listen();
      this.ok = true;
      if (!starting) await this.takeOverExpired();
    } catch (e) {
      this.failed(e);
    }
  }

  private failed(e: unknown): void {
    this.ok = false;
    this.error = (e as Error)?.message ?? String(e);
  }

  /** Messages left `submitting` by a node whose lease ran out: the in-flight policy decides. */
  private async takeOverExpired(): Promise<number> {
    const n = await this.tx(async (tx, done) => {
      const rows = await tx`SELECT * FROM messages WHERE state = 'submitting' AND lease_until < ${this.now()} ORDER BY lease_until LIMIT 1000 FOR UPDATE SKIP LOCKED`;
      for (const row of rows) {
        const m = toMessage(row);
        await this.apply(tx, m, decideInFlight(m, this.opts, this.now()), done, row.lease_node as string);
      }
      return rows.length;
    });
    return n;
  }

  /** A transaction; outcomes and wake-ups are told only once it committed. */
  private async tx<T>(fn: (tx: Tx, done: Effects) => Promise<T>): Promise<T> {
    const done: Effects = { outcomes: [], queued: 0 };
    let value: T;
    try {
      value = (await this.sql.begin((tx) => fn(tx, done))) as T;
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

  private async read<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
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

  watch(listener: (kind: WorkKind) => void): void {
    this.listeners.push(listener);
  }

  queuedCount(): number {
    return this.queued;
  }

  whenDurable(): Promise<void> {
    // COMMIT returned with synchronous_commit on: whatever was read is durable on the server.
    return Promise.resolve();
  }

  healthy(): boolean {
    return this.ok;
  }

  lastError(): string | null {
    return this.error;
  }

  private closing: Promise<void> | null = null;

  close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.closing ??= this.sql.end({ timeout: 5 });
    return this.closing;
  }

  // ---- intake -------------------------------------------------------------------------------

  async accept(input: AcceptInput): Promise<StoredResponse> {
    const r = await this.tx(async (tx): Promise<StoredResponse> => {
      const now = this.now();
      const id = newId("msg", now, this.random);
      const body = JSON.stringify({ id, request_id: input.requestId, status: "accepted" });
      if (input.requestId !== null) {
        // A concurrent insert of the same key on another node waits here for that one's COMMIT.
        const ins = await tx`INSERT INTO dedup (account_id, request_id, message_id, status, response, body_hash, created_at)
          VALUES (${input.accountId}, ${input.requestId}, ${id}, 200, ${body}, ${input.bodyHash}, ${now}) ON CONFLICT DO NOTHING RETURNING 1`;
        if (ins.length === 0) return (await readRequest(tx, input.accountId, input.requestId, input.bodyHash))!;
      }
      await tx`INSERT INTO messages (id, account_id, request_id, channel, fallback, state, attempts, created_at, updated_at, due_at, expires_at, history, payload)
        VALUES (${id}, ${input.accountId}, ${input.requestId}, ${input.channel}, false, 'accepted', 0, ${now}, ${now}, ${now}, ${input.expiresAt}, ${historyLine(now, "accepted")}, ${JSON.stringify(input.payload)})`;
      await tx`SELECT pg_notify(${channelName}, ${input.channel})`;
      return { status: 200, body, replay: false, bodyDiffers: false, messageId: id };
    });
    if (!r.replay) this.queued++;
    return r;
  }

  rememberRefusal(accountId: string, requestId: string, status: number, body: string, bodyHash: string): Promise<StoredResponse> {
    return this.tx(async (tx) => {
      const ins = await tx`INSERT INTO dedup (account_id, request_id, message_id, status, response, body_hash, created_at)
        VALUES (${accountId}, ${requestId}, NULL, ${status}, ${body}, ${bodyHash}, ${this.now()}) ON CONFLICT DO NOTHING RETURNING 1`;
      if (ins.length === 0) return (await readRequest(tx, accountId, requestId, bodyHash))!;
      return { status, body, replay: false, bodyDiffers: false, messageId: null };
    });
  }

  lookupRequest(accountId: string, requestId: string, bodyHash: string): Promise<StoredResponse | null> {
    return this.read((sql) => readRequest(sql, accountId, requestId, bodyHash));
  }

  // ---- dispatching --------------------------------------------------------------------------

  claimDue(channel: Channel, limit: number, assign?: (m: StoredMessage) => string): Promise<StoredMessage[]> {
    return this.tx(async (tx, done) => {
      const now = this.now();
      const rows = await tx`SELECT * FROM messages WHERE state = 'accepted' AND channel = ${channel} AND due_at IS NOT NULL AND due_at <= ${now}
        ORDER BY due_at LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
      const claimed: StoredMessage[] = [];
      for (const row of rows) {
        const m = toMessage(row);
        const t = decideClaim(m, now, row.last_error as string | null, now < m.expiresAt ? assign?.(m) : undefined);
        await this.apply(tx, m, t, done);
        if (t.to === "submitting") claimed.push(m);
      }
      return claimed;
    });
  }

  nextDue(state: "accepted" | "submitted", channel: Channel): Promise<number | null> {
    return this.read(async (sql) => {
      const [r] = await sql`SELECT MIN(due_at) AS t FROM messages WHERE state = ${state} AND channel = ${channel} AND due_at IS NOT NULL`;
      return (r?.t as number | null) ?? null;
    });
  }

  recordSubmit(
    claimed: StoredMessage,
    carrier: string,
    result: SubmitResult,
    routing: { pin: boolean; elsewhere: boolean } = { pin: false, elsewhere: false },
  ): Promise<SubmitVerdict> {
    return this.tx(async (tx, done) => {
      const m = { ...claimed };
      const now = this.now();
      const t = decideAfterSubmit(m, carrier, result, this.opts, now, this.random, routing);
      if (result.kind === "ok") {
        await lockKeys(tx, carrier, result.carrierMessageIds);
        for (const [part, cid] of result.carrierMessageIds.entries()) {
          await tx`INSERT INTO carrier_ids (carrier, carrier_id, message_id, part, outcome) VALUES (${carrier}, ${cid}, ${m.id}, ${part}, NULL)
            ON CONFLICT (carrier, carrier_id) DO UPDATE SET message_id = EXCLUDED.message_id, part = EXCLUDED.part, outcome = NULL`;
        }
      }
      await this.apply(tx, m, t, done);
      if (result.kind !== "ok") return submitVerdict(t);
      // Receipts that beat the submit answer (on any node, or naming it in another base) were held.
      let held = 0;
      for (const cid of result.carrierMessageIds) {
        const taken = await tx`SELECT receipt, received_at FROM early_receipts WHERE carrier = ${carrier} AND carrier_id = ${cid}`;
        for (const t of new Map(taken.map((x) => [x.receipt as string, x])).values()) {
          const r = JSON.parse(t.receipt as string) as CarrierReceipt;
          await tx`DELETE FROM early_receipts WHERE carrier = ${carrier} AND carrier_id = ANY(${heldKeys(cid, r)}::text[]) AND receipt = ${t.receipt as string}`;
          await this.applyReceiptIn(tx, r, t.received_at as number, done);
          held++;
        }
      }
      if (held === 0) return { fallback: false, final: null };
      const [row] = await tx`SELECT state FROM messages WHERE id = ${m.id}`;
      return verdictAfterHeldReceipts(row!.state as MessageState);
    });
  }

  /** At start: this node's own claims from before a restart, and any other node's expired ones. */
  recoverInFlight(): Promise<number> {
    return this.tx(async (tx, done) => {
      const rows = await tx`SELECT * FROM messages WHERE state = 'submitting' AND (lease_node = ${this.node} OR lease_until < ${this.now()}) FOR UPDATE SKIP LOCKED`;
      for (const row of rows) {
        const m = toMessage(row);
        await this.apply(tx, m, decideInFlight(m, this.opts, this.now()), done, row.lease_node as string);
      }
      return rows.length;
    });
  }

  openCarrierIds(carrier: string): Promise<{ carrierMessageId: string; to: string }[]> {
    return this.read(async (sql) => {
      const rows = await sql`SELECT c.carrier_id AS id, m.payload AS payload FROM carrier_ids c JOIN messages m ON m.id = c.message_id
        WHERE c.carrier = ${carrier} AND c.outcome IS NULL AND m.state = 'submitted'`;
      return rows.map((r) => ({ carrierMessageId: r.id as string, to: (JSON.parse(r.payload as string) as MessagePayload).to }));
    });
  }

  expireReceiptWindows(limit: number): Promise<number> {
    return this.tx(async (tx, done) => {
      const now = this.now();
      const rows = await tx`SELECT * FROM messages WHERE state = 'submitted' AND due_at IS NOT NULL AND due_at <= ${now} ORDER BY due_at LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
      for (const row of rows) {
        const m = toMessage(row);
        await this.apply(tx, m, decideReceiptWindowEnd(m, now), done);
      }
      return rows.length;
    });
  }

  dropStaleEarlyReceipts(holdMs: number): Promise<{ carrier: string; carrier_id: string }[]> {
    return this.tx(async (tx) => {
      return oncePerReceipt(await tx`DELETE FROM early_receipts WHERE received_at < ${this.now() - holdMs} RETURNING carrier, carrier_id, receipt`);
    });
  }

  // ---- receipts ------------------------------------------------------------------------------

  applyReceipt(r: CarrierReceipt): Promise<ReceiptResult> {
    return this.tx((tx, done) => this.applyReceiptIn(tx, r, this.now(), done));
  }

  private async applyReceiptIn(tx: Tx, r: CarrierReceipt, arrivedAt: number, done: Effects): Promise<ReceiptResult> {
    if (r.outcome === "pending") return "ignored";
    const readings = this.idBases.narrow(r.carrier, r.readings ?? [{ key: r.carrierMessageId, base: "same" }]);
    await lockKeys(tx, r.carrier, readings.map((x) => x.key));
    const found: ReceiptCandidate[] = [];
    for (const reading of readings) {
      const [link] = await tx`SELECT c.message_id, c.outcome, m.payload, m.updated_at FROM carrier_ids c LEFT JOIN messages m ON m.id = c.message_id
        WHERE c.carrier = ${r.carrier} AND c.carrier_id = ${reading.key}`;
      if (link) found.push(toCandidate(reading, link));
    }
    const match = chooseCandidate(found, { to: r.to, arrivedAt });
    if (match.kind !== "match") {
      for (const reading of readings) {
        await tx`INSERT INTO early_receipts (carrier, carrier_id, receipt, received_at) VALUES (${r.carrier}, ${reading.key}, ${JSON.stringify(r)}, ${arrivedAt})`;
      }
      return "unmatched";
    }
    const { key, messageId } = match.candidate;
    if (match.evidence) this.idBases.record(r.carrier, match.candidate.base);
    // The message row first: two parts' receipts on two nodes then see each other's outcome.
    const [row] = await tx`SELECT * FROM messages WHERE id = ${messageId} FOR UPDATE`;
    const [link] = await tx`SELECT outcome FROM carrier_ids WHERE carrier = ${r.carrier} AND carrier_id = ${key}`;
    if (!link || link.outcome !== null) return "duplicate";
    await tx`UPDATE carrier_ids SET outcome = ${r.outcome} WHERE carrier = ${r.carrier} AND carrier_id = ${key}`;
    if (!row) return "ignored";
    const m = toMessage(row);
    if (m.state !== "submitted") return "duplicate";
    const parts = (await tx`SELECT carrier_id, outcome FROM carrier_ids WHERE message_id = ${m.id} AND carrier = ${r.carrier} ORDER BY part`).map((p) => ({
      carrierId: p.carrier_id as string,
      outcome: p.outcome as CarrierReceipt["outcome"] | null,
    }));
    const t = decideReceipt(m, r, key, parts, this.opts.noMmsMemoryMs);
    if (t) await this.apply(tx, m, t, done);
    return "applied";
  }

  listUnmatchedReceipts(limit = 100): Promise<UnmatchedReceipt[]> {
    return this.read(async (sql) => {
      const rows = await sql`SELECT carrier, json_agg(carrier_id ORDER BY seq) AS ids, receipt, received_at FROM early_receipts
        GROUP BY carrier, receipt, received_at ORDER BY MIN(seq) LIMIT ${limit}`;
      return rows.map((r) => ({ carrier: r.carrier as string, carrierIds: r.ids as string[], receivedAt: r.received_at as number, receipt: JSON.parse(r.receipt as string) }));
    });
  }

  recordInbound(accountId: string, url: string, m: InboundMessage): Promise<string> {
    return this.tx(async (tx) => {
      const now = this.now();
      const eventId = newId("evt", now, this.random);
      const body = inboundEvent(eventId, m);
      await tx`INSERT INTO events (event_id, message_id, account_id, kind, url, body, state, attempts, created_at, updated_at, due_at)
        VALUES (${eventId}, NULL, ${accountId}, 'inbound', ${url}, ${JSON.stringify(body)}, 'pending', 0, ${now}, ${now}, ${now})`;
      await tx`SELECT pg_notify(${channelName}, 'events')`;
      return eventId;
    });
  }

  // ---- outbox -------------------------------------------------------------------------------

  /**
   * Claims due events for this node (a lease, renewed by the heartbeat while the node lives): another
   * node's lease is skipped, this node's own are returned again (its outbox knows what it is sending).
   * A (account, URL) of which another node holds any event is skipped whole, so one node at a time posts
   * to it; the claims are serialised cluster-wide so two nodes cannot both find a key free.
   */
  dueEvents(now: number, limit: number, busy: WebhookKey[] = []): Promise<PendingEvent[]> {
    return this.tx(async (tx) => {
      const me = this.node;
      await tx`SELECT pg_advisory_xact_lock(hashtextextended('gateway:outbox-claim', 0))`;
      const rows = await tx`UPDATE events SET lease_node = ${me}, lease_until = ${now + this.leaseMs} WHERE seq IN (
          SELECT seq FROM events e WHERE state = 'pending' AND due_at <= ${now}
            AND (lease_node IS NULL OR lease_node = ${me} OR lease_until < ${now})
            AND NOT EXISTS (SELECT 1 FROM events k WHERE k.account_id = e.account_id AND k.url = e.url AND k.state = 'pending'
              AND k.lease_node IS NOT NULL AND k.lease_node <> ${me} AND k.lease_until >= ${now})
            AND (e.account_id, e.url) NOT IN (SELECT * FROM unnest(${busy.map((k) => k.accountId)}::text[], ${busy.map((k) => k.url)}::text[]))
            AND (message_id IS NULL OR NOT EXISTS (SELECT 1 FROM events o WHERE o.message_id = e.message_id AND o.state = 'pending' AND o.seq < e.seq))
          ORDER BY due_at, seq LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING seq, event_id, message_id, account_id, url, body, attempts, created_at, due_at`;
      rows.sort((a, b) => (a.due_at as number) - (b.due_at as number) || (a.seq as number) - (b.seq as number));
      return rows.map((r) => ({
        seq: r.seq as number,
        eventId: r.event_id as string,
        messageId: r.message_id as string | null,
        accountId: r.account_id as string,
        url: r.url as string,
        body: r.body as string,
        attempts: r.attempts as number,
        createdAt: r.created_at as number,
      }));
    });
  }

  nextEventDue(now: number): Promise<number | null> {
    return this.read(async (sql) => {
      const [r] = await sql`SELECT MIN(due_at) AS t FROM events WHERE state = 'pending' AND due_at > ${now}`;
      return (r?.t as number | null) ?? null;
    });
  }

  async eventsDelivered(seqs: number[]): Promise<void> {
    await this.tx(async (tx) => {
      await tx`UPDATE events SET state = 'delivered', attempts = attempts + 1, updated_at = ${this.now()}, due_at = NULL, last_error = NULL, lease_node = NULL, lease_until = NULL
        WHERE seq = ANY(${seqs}::bigint[]) AND state = 'pending'`;
      // The next event of these messages is due now, maybe at another node.
      await tx`SELECT pg_notify(${channelName}, 'events')`;
    });
  }

  async eventsRetry(seqs: number[], dueAt: number, error: string): Promise<void> {
    await this.tx(
      (tx) => tx`UPDATE events SET attempts = attempts + 1, updated_at = ${this.now()}, due_at = ${dueAt}, last_error = ${error}, lease_node = NULL, lease_until = NULL
        WHERE seq = ANY(${seqs}::bigint[]) AND state = 'pending'`,
    );
  }

  async eventsDead(seqs: number[], error: string): Promise<void> {
    await this.tx(
      (tx) => tx`UPDATE events SET state = 'dead', attempts = attempts + 1, updated_at = ${this.now()}, due_at = NULL, last_error = ${error}, lease_node = NULL, lease_until = NULL
        WHERE seq = ANY(${seqs}::bigint[]) AND state = 'pending'`,
    );
  }

  // ---- admin and housekeeping ---------------------------------------------------------------

  messageOfCarrierId(carrier: string, carrierMessageId: string): Promise<{ messageId: string; requestId: string | null } | null> {
    return this.read(async (sql) => {
      const [r] = await sql`SELECT m.id, m.request_id FROM carrier_ids c JOIN messages m ON m.id = c.message_id WHERE c.carrier = ${carrier} AND c.carrier_id = ${carrierMessageId}`;
      return r ? { messageId: r.id as string, requestId: r.request_id as string | null } : null;
    });
  }

  getMessage(id: string): Promise<StoredMessage | null> {
    return this.read(async (sql) => {
      const [r] = await sql`SELECT * FROM messages WHERE id = ${id}`;
      return r ? toMessage(r) : null;
    });
  }

  describe(idOrRequestId: string): Promise<Record<string, unknown> | null> {
    return this.read(async (sql) => {
      let [row] = await sql`SELECT * FROM messages WHERE id = ${idOrRequestId}`;
      if (!row) [row] = await sql`SELECT * FROM messages WHERE request_id = ${idOrRequestId} ORDER BY id DESC LIMIT 1`;
      if (!row) return null;
      const m = toMessage(row);
      return {
        ...m,
        carrier: row.carrier,
        lastError: row.last_error,
        dueAt: row.due_at,
        lease: row.lease_node ? { node: row.lease_node, until: row.lease_until } : null,
        history: String(row.history)
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
        carrierIds: [...(await sql`SELECT carrier, carrier_id, part, outcome FROM carrier_ids WHERE message_id = ${m.id} ORDER BY carrier, part`)],
        events: [...(await sql`SELECT seq, event_id, kind, url, state, attempts, created_at, updated_at, due_at, last_error, body FROM events WHERE message_id = ${m.id} ORDER BY seq`)],
      };
    });
  }

  listDeadEvents(limit = 100): Promise<Row[]> {
    return this.read(async (sql) => [
      ...(await sql`SELECT seq, event_id, message_id, account_id, url, attempts, created_at, updated_at, last_error FROM events WHERE state = 'dead' ORDER BY seq LIMIT ${limit}`),
    ]);
  }

  requeueDead(seqs: number[] | "all"): Promise<number> {
    return this.tx(async (tx) => {
      const now = this.now();
      const r =
        seqs === "all"
          ? await tx`UPDATE events SET state = 'pending', due_at = ${now}, created_at = ${now}, updated_at = ${now} WHERE state = 'dead'`
          : await tx`UPDATE events SET state = 'pending', due_at = ${now}, created_at = ${now}, updated_at = ${now} WHERE seq = ANY(${seqs}::bigint[]) AND state = 'dead'`;
      await tx`SELECT pg_notify(${channelName}, 'events')`;
      return r.count;
    });
  }

  retryFailed(filter: RetryFilter, validityMs: number): Promise<number> {
    return this.tx(async (tx, done) => {
      const now = this.now();
      const rows = await tx`SELECT * FROM messages WHERE state = 'failed' AND updated_at >= ${filter.since ?? 0}
        AND (${filter.errorCode ?? null}::text IS NULL OR last_error LIKE ${`%"code":"${filter.errorCode ?? ""}"%`})
        AND (${filter.accountId ?? null}::text IS NULL OR account_id = ${filter.accountId ?? null})
        ORDER BY id LIMIT ${filter.limit ?? 1000} FOR UPDATE SKIP LOCKED`;
      for (const row of rows) {
        const m = toMessage(row);
        await this.apply(tx, m, decideOperatorRetry(m, now, validityMs), done);
        // The new attempt gets new carrier ids; the old ones' late receipts must not match it.
        await tx`DELETE FROM carrier_ids WHERE message_id = ${m.id}`;
      }
      return rows.length;
    });
  }

  async purge(dedupBefore: number, finishedBefore: number, chunk = 5000): Promise<{ dedup: number; messages: number; events: number }> {
    const total = { dedup: 0, messages: 0, events: 0 };
    const floor = idFloor("msg", finishedBefore);
    for (;;) {
      const n = await this.tx(async (tx) => {
        const dedup = (await tx`DELETE FROM dedup WHERE (account_id, request_id) IN (SELECT account_id, request_id FROM dedup WHERE created_at < ${dedupBefore} LIMIT ${chunk})`).count;
        const ids = await tx`DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE id < ${floor} AND due_at IS NULL AND state IN ('delivered','failed','sent') LIMIT ${chunk}) RETURNING id`;
        if (ids.length) await tx`DELETE FROM carrier_ids WHERE message_id = ANY(${ids.map((r) => r.id as string)}::text[])`;
        const events = (await tx`DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE state = 'delivered' AND updated_at < ${finishedBefore} ORDER BY seq LIMIT ${chunk})`).count;
        return { dedup, messages: ids.length, events };
      });
      total.dedup += n.dedup;
      total.messages += n.messages;
      total.events += n.events;
      if (n.dedup < chunk && n.messages < chunk && n.events < chunk) return total;
    }
  }

  // ---- media ----------------------------------------------------------------------------------

  async adaptedMedia(hash: string, profile: string): Promise<AdaptedMedia | null> {
    const [r] = await this.read((sql) => sql`SELECT content_type, bytes, width, height, unfit FROM adapted_media WHERE source_hash = ${hash} AND profile = ${profile}`);
    if (!r) return null;
    const key = `${hash}@${profile}`;
    const now = this.now();
    if (now - (this.touched.get(key) ?? 0) > TOUCH_EVERY_MS) {
      this.touched.set(key, now);
      // Only keeps the entry from the purge; losing it to an outage costs nothing.
      this.read((sql) => sql`UPDATE adapted_media SET used_at = GREATEST(used_at, ${now}) WHERE source_hash = ${hash} AND profile = ${profile}`).catch(() => this.touched.delete(key));
    }
    if (r.unfit !== null) return { unfit: r.unfit as string };
    return { contentType: r.content_type as string, bytes: new Uint8Array(r.bytes as Buffer), width: r.width as number, height: r.height as number };
  }

  async putAdaptedMedia(hash: string, profile: string, m: AdaptedMedia): Promise<void> {
    const now = this.now();
    this.touched.set(`${hash}@${profile}`, now);
    const [type, bytes, width, height, unfit] = "unfit" in m ? [null, null, null, null, m.unfit] : [m.contentType, Buffer.from(m.bytes), m.width, m.height, null];
    await this.read(
      (sql) => sql`INSERT INTO adapted_media (source_hash, profile, content_type, bytes, width, height, unfit, created_at, used_at)
        VALUES (${hash}, ${profile}, ${type}, ${bytes}, ${width}, ${height}, ${unfit}, ${now}, ${now})
        ON CONFLICT (source_hash, profile) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, width = excluded.width,
          height = excluded.height, unfit = excluded.unfit, used_at = excluded.used_at`,
    );
  }

  async ensureMediaLink(link: Omit<MediaLink, "expiresAt">, ttlMs: number): Promise<MediaLink> {
    const now = this.now();
    return this.tx(async (tx) => {
      await tx`INSERT INTO media_links (token, message_id, subject, text, media, created_at, expires_at)
        VALUES (${link.token}, ${link.messageId}, ${link.subject}, ${link.text}, ${JSON.stringify(link.media)}, ${now}, ${now + ttlMs}) ON CONFLICT DO NOTHING`;
      const [r] = await tx`SELECT * FROM media_links WHERE message_id = ${link.messageId}`;
      return toLink(r!);
    });
  }

  async mediaLink(token: string): Promise<MediaLink | null> {
    const [r] = await this.read((sql) => sql`SELECT * FROM media_links WHERE token = ${token} AND expires_at > ${this.now()}`);
    return r ? toLink(r) : null;
  }

  async noMmsMemory(number: string): Promise<CapabilityEntry | null> {
    const [r] = await this.read((sql) => sql`UPDATE capability SET hits = hits + 1 WHERE number = ${number} AND until > ${this.now()} RETURNING *`);
    return r ? toCapability(r) : null;
  }

  async listNoMms(limit = 1000): Promise<CapabilityEntry[]> {
    return (await this.read((sql) => sql`SELECT * FROM capability WHERE until > ${this.now()} ORDER BY created_at DESC LIMIT ${limit}`)).map(toCapability);
  }

  async forgetNoMms(number: string): Promise<boolean> {
    return (await this.read((sql) => sql`DELETE FROM capability WHERE number = ${number}`)).count > 0;
  }

  purgeMedia(adaptedUnusedBefore: number): Promise<{ links: number; capability: number; adapted: number }> {
    const now = this.now();
    return this.tx(async (tx) => ({
      links: (await tx`DELETE FROM media_links WHERE expires_at <= ${now}`).count,
      capability: (await tx`DELETE FROM capability WHERE until <= ${now}`).count,
      adapted: (await tx`DELETE FROM adapted_media WHERE used_at < ${adaptedUnusedBefore}`).count,
    }));
  }

  queueStats(): Promise<{ state: string; channel: string; count: number; oldest: number | null }[]> {
    return this.read(async (sql) =>
      (await sql`SELECT state, channel, COUNT(*)::int AS count, MIN(updated_at) AS oldest FROM messages WHERE due_at IS NOT NULL GROUP BY state, channel`).map((r) => ({
        state: r.state as string,
        channel: r.channel as string,
        count: r.count as number,
        oldest: r.oldest as number | null,
      })),
    );
  }

  eventStats(): Promise<{ state: string; count: number; oldest: number | null }[]> {
    return this.read(async (sql) =>
      (await sql`SELECT state, COUNT(*)::int AS count, MIN(created_at) AS oldest FROM events WHERE state IN ('pending','dead') GROUP BY state`).map((r) => ({
        state: r.state as string,
        count: r.count as number,
        oldest: r.oldest as number | null,
      })),
    );
  }

  /** The nodes sharing this database; one silent for a lease has had its claims taken over. */
  nodes(): Promise<NodeInfo[]> {
    const since = this.now() - this.leaseMs;
    return this.read(async (sql) =>
      (await sql`SELECT id, started_at, seen_at FROM nodes ORDER BY id`).map((r) => ({
        id: r.id as string,
        startedAt: r.started_at as number,
        seenAt: r.seen_at as number,
        live: (r.seen_at as number) >= since,
      })),
    );
  }

  // ---- transitions (inside a transaction) ---------------------------------------------------

  /**
   * Writes a decided transition as a compare-and-set on the state it was decided from (and, from
   * `submitting`, on the lease: a node whose lease was taken over cannot apply its late answer).
   */
  private async apply(tx: Tx, m: StoredMessage, t: Transition, done: Effects, leaseHolder: string = this.node): Promise<void> {
    const now = this.now();
    const claiming = t.to === "submitting";
    const r = await tx`UPDATE messages SET state = ${t.to}, due_at = ${t.dueAt}, updated_at = ${now}, attempts = attempts + ${t.attemptsDelta},
        channel = ${t.channel}, fallback = ${t.fallback}, carrier = COALESCE(${t.carrier}, carrier), last_error = COALESCE(${t.error ? JSON.stringify(t.error) : null}, last_error),
        expires_at = COALESCE(${t.expiresAt ?? null}::bigint, expires_at), history = history || ${historyLine(now, t.to, t.detail)},
        lease_node = ${claiming ? this.node : null}, lease_until = ${claiming ? now + this.leaseMs : null}
      WHERE id = ${m.id} AND state = ${t.from} AND (state <> 'submitting' OR lease_node = ${leaseHolder})`;
    if (r.count !== 1) throw new Error(`message ${m.id} is no longer ${t.from}`);
    Object.assign(m, { state: t.to, channel: t.channel, fallback: t.fallback, attempts: m.attempts + t.attemptsDelta });
    if (t.carrier !== null) m.carrier = t.carrier;
    if (t.routing) {
      await tx`UPDATE messages SET pinned_carrier = ${t.routing.pinned}, refused_carriers = ${t.routing.refused.join(",")} WHERE id = ${m.id}`;
      Object.assign(m, t.routing);
    }
    if (t.expiresAt !== undefined) m.expiresAt = t.expiresAt;
    if (t.fallbackReason !== undefined) {
      m.fallbackReason = t.fallbackReason;
      await tx`UPDATE messages SET fallback_reason = ${t.fallbackReason} WHERE id = ${m.id}`;
    }
    if (t.noMms) {
      await tx`INSERT INTO capability (number, reason, created_at, until) VALUES (${t.noMms.number}, ${t.noMms.reason}, ${now}, ${t.noMms.until})
        ON CONFLICT (number) DO UPDATE SET reason = excluded.reason, until = excluded.until`;
    }
    if (waitsForCarrier(t.from) !== waitsForCarrier(t.to)) done.queued += waitsForCarrier(t.to) ? 1 : -1;
    if (t.to === "accepted") await tx`SELECT pg_notify(${channelName}, ${t.channel})`;
    if (t.event) {
      const eventId = newId("evt", now, this.random);
      const body = deliveryEvent(m, t.event.status, eventId, t.event.at, t.event.carrierMessageId, t.event.error);
      await tx`INSERT INTO events (event_id, message_id, account_id, kind, url, body, state, attempts, created_at, updated_at, due_at)
        VALUES (${eventId}, ${m.id}, ${m.accountId}, ${t.event.status}, ${m.payload.callback_url}, ${JSON.stringify(body)}, 'pending', 0, ${now}, ${now}, ${now})`;
      await tx`SELECT pg_notify(${channelName}, 'events')`;
    }
    if (t.outcome) done.outcomes.push(t.outcome);
  }
}

/**
 * Serialises a receipt and the submit answer naming the same carrier id, whichever nodes they reach:
 * the receipt then either finds the id or is held where the submit's transaction looks. Sorted, so two
 * transactions taking several keys cannot deadlock.
 */
async function lockKeys(tx: Tx, carrier: string, keys: string[]): Promise<void> {
  for (const k of [...new Set(keys)].sort()) await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`${carrier}\n${k}`}, 0))`;
}

async function readRequest(sql: Sql | Tx, accountId: string, requestId: string, bodyHash: string): Promise<StoredResponse | null> {
  const [row] = await sql`SELECT message_id, status, response, body_hash FROM dedup WHERE account_id = ${accountId} AND request_id = ${requestId}`;
  if (!row) return null;
  return { status: row.status as number, body: row.response as string, replay: true, bodyDiffers: row.body_hash !== bodyHash, messageId: row.message_id as string | null };
}
