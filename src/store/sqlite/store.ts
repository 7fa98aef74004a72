// The only place that speaks SQL. Every write goes through the group-commit writer, and every state
// change writes its webhook event in the same transaction (the outbox).
import type { Database, Statement } from "bun:sqlite";
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
import type { AcceptInput, AdaptedMedia, MediaLink, NodeInfo, PendingEvent, ReceiptResult, RetryFilter, Store, StoredResponse, StoreOptions, UnmatchedReceipt, WebhookKey } from "../index.ts";
import type { Channel, MessagePayload, MessageState, StoredMessage } from "../../domain/message.ts";
import { chooseCandidate, heldKeys, IdBaseLearning, type ReceiptCandidate } from "../../domain/receipt-match.ts";
import { Checkpointer } from "./checkpointer.ts";
import { GroupCommit, migrate, openDatabase, type WalSync } from "./db.ts";
import { SqliteMedia } from "./media.ts";
import { historyLine, oncePerReceipt, toCandidate, toMessage } from "../rows.ts";

/** Applies the migrations to the file (creating it) and closes it. */
export function migrateSqlite(path: string): { from: number; to: number } {
  const db = openDatabase(path, false);
  try {
    return migrate(db);
  } finally {
    db.close();
  }
}

/** SQLite's own options beside the engine-neutral ones. */
export interface SqliteOptions extends StoreOptions {
  /** Checkpoint the WAL on a worker thread instead of inside COMMIT (the running gateway does). */
  backgroundCheckpoints?: boolean;
  /** How the WAL is fsynced (default fdatasync). */
  walSync?: WalSync;
  /** This process's node id (null or absent: a tool, no node). */
  nodeId?: string | null;
}

type Row = Record<string, string | number | null>;

export class SqliteStore implements Store {
  readonly writer: GroupCommit;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly s: Record<string, Statement>;
  /**
   * Messages waiting for a carrier (accepted or submitting): the queue the high-water mark is about.
   * Kept in memory so the check costs nothing per request; every transition adjusts it in move().
   */
  private queued = 0;
  /** Each carrier's id base as its receipts show it (receipt_id_base = "learn"). */
  private readonly idBases = new IdBaseLearning();
  private readonly media: SqliteMedia;
  private readonly startedAt: number;

  constructor(
    readonly db: Database,
    private readonly opts: SqliteOptions,
  ) {
    this.writer = new GroupCommit(db, opts.walSync);
    this.writer.onFsyncFailure = opts.onDurabilityLost ?? null;
    this.now = opts.now;
    this.startedAt = opts.now();
    this.random = opts.random ?? Math.random;
    this.media = new SqliteMedia(db, this.writer, this.now);
    const q = (sql: string) => db.prepare(sql);
    this.s = {
      dedupInsert: q(
        "INSERT OR IGNORE INTO dedup (account_id, request_id, message_id, status, response, body_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ),
      dedupGet: q("SELECT message_id, status, response, body_hash FROM dedup WHERE account_id = ? AND request_id = ?"),
      messageInsert: q(
        "INSERT INTO messages (id, account_id, request_id, channel, fallback, state, attempts, created_at, updated_at, due_at, expires_at, history, payload) VALUES (?, ?, ?, ?, 0, 'accepted', 0, ?, ?, ?, ?, ?, ?)",
      ),
      messageGet: q("SELECT * FROM messages WHERE id = ?"),
      setFallbackReason: q("UPDATE messages SET fallback_reason = ? WHERE id = ?"),
      due: q("SELECT * FROM messages WHERE state = ? AND channel = ? AND due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?"),
      nextDue: q("SELECT MIN(due_at) AS t FROM messages WHERE state = ? AND channel = ? AND due_at IS NOT NULL"),
      setState: q(
        "UPDATE messages SET state = ?, due_at = ?, updated_at = ?, attempts = attempts + ?, channel = ?, fallback = ?, carrier = COALESCE(?, carrier), last_error = COALESCE(?, last_error), expires_at = COALESCE(?, expires_at), history = history || ? WHERE id = ? AND state = ?",
      ),
      setRouting: q("UPDATE messages SET pinned_carrier = ?, refused_carriers = ? WHERE id = ?"),
      carrierIdInsert: q("INSERT OR REPLACE INTO carrier_ids (carrier, carrier_id, message_id, part, outcome) VALUES (?, ?, ?, ?, NULL)"),
      carrierIdGet: q(
        "SELECT c.message_id, c.outcome, m.payload, m.updated_at FROM carrier_ids c LEFT JOIN messages m ON m.id = c.message_id WHERE c.carrier = ? AND c.carrier_id = ?",
      ),
      carrierIdSetOutcome: q("UPDATE carrier_ids SET outcome = ? WHERE carrier = ? AND carrier_id = ?"),
      carrierIdsOf: q("SELECT carrier, carrier_id, part, outcome FROM carrier_ids WHERE message_id = ? ORDER BY carrier, part"),
      partsOf: q("SELECT carrier_id, part, outcome FROM carrier_ids WHERE message_id = ? AND carrier = ? ORDER BY part"),
      earlyInsert: q("INSERT INTO early_receipts (carrier, carrier_id, receipt, received_at) VALUES (?, ?, ?, ?)"),
      earlyAt: q("SELECT receipt, received_at FROM early_receipts WHERE carrier = ? AND carrier_id = ?"),
      // By key and text, so the index is used: on the submit path, a scan would cost every held receipt.
      earlyDelete: q("DELETE FROM early_receipts WHERE carrier = ? AND carrier_id = ? AND receipt = ?"),
      earlyExpire: q("DELETE FROM early_receipts WHERE received_at < ? RETURNING carrier, carrier_id, receipt"),
      eventInsert: q(
        "INSERT INTO events (event_id, message_id, account_id, kind, url, body, state, attempts, created_at, updated_at, due_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
      ),
      // Both through the partial index events_pending, however many delivered events are kept.
      // Only a message's oldest pending event is ever due: a later one waits in the database, not in
      // the read window, so events blocked behind a retrying one can never crowd out the rest.
      eventsDue: q(
        `SELECT seq, event_id, message_id, account_id, url, body, attempts, created_at FROM events e
         WHERE state = 'pending' AND due_at <= ?
           AND (message_id IS NULL OR NOT EXISTS (SELECT 1 FROM events o WHERE o.message_id = e.message_id AND o.state = 'pending' AND o.seq < e.seq))
           AND NOT EXISTS (SELECT 1 FROM json_each(?) b WHERE b.value ->> '$.accountId' = e.account_id AND b.value ->> '$.url' = e.url)
         ORDER BY due_at, seq LIMIT ?`,
      ),
      nextEventDue: q("SELECT MIN(due_at) AS t FROM events WHERE state = 'pending' AND due_at > ?"),

      eventDelivered: q("UPDATE events SET state = 'delivered', attempts = attempts + 1, updated_at = ?, due_at = NULL, last_error = NULL WHERE seq = ? AND state = 'pending'"),
      eventRetry: q("UPDATE events SET attempts = attempts + 1, updated_at = ?, due_at = ?, last_error = ? WHERE seq = ? AND state = 'pending'"),
      eventDead: q("UPDATE events SET state = 'dead', attempts = attempts + 1, updated_at = ?, due_at = NULL, last_error = ? WHERE seq = ? AND state = 'pending'"),
      countQueued: q("SELECT COUNT(*) AS n FROM messages WHERE due_at IS NOT NULL AND state IN ('accepted', 'submitting')"),
    };
    this.queued = (this.s.countQueued!.get() as { n: number }).n;
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

  checkpointer: Checkpointer | null = null;

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

  adaptedMedia(hash: string, profile: string) {
    return this.media.adapted(hash, profile);
  }

  putAdaptedMedia(hash: string, profile: string, media: AdaptedMedia) {
    return this.media.putAdapted(hash, profile, media);
  }

  ensureMediaLink(link: Omit<MediaLink, "expiresAt">, ttlMs: number) {
    return this.media.ensureLink(link, ttlMs);
  }

  mediaLink(token: string) {
    return this.media.link(token);
  }

  noMmsMemory(number: string) {
    return this.media.remembered(number);
  }

  listNoMms(limit?: number) {
    return this.media.listCapability(limit);
  }

  forgetNoMms(number: string) {
    return this.media.forgetCapability(number);
  }

  purgeMedia(adaptedUnusedBefore: number) {
    return this.media.purge(adaptedUnusedBefore);
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

  /** Change to `queued` made by the write running now; applied only once its transaction commits. */
  private queuedDelta = 0;
  /** Outcomes of the write running now; reported only once its transaction commits. */
  private outcomes: Outcome[] = [];

  /** A write whose effect on the queue count lands only after it is durable. */
  private tx<T>(fn: () => T): Promise<T> {
    return this.writer
      .write(() => {
        this.queuedDelta = 0;
        this.outcomes = [];
        const value = fn();
        return { value, delta: this.queuedDelta, outcomes: this.outcomes };
      })
      .then(({ value, delta, outcomes }) => {
        this.queued += delta;
        if (this.opts.onOutcome) for (const o of outcomes) this.opts.onOutcome(o);
        return value;
      });
  }

  /** Messages waiting for a carrier (the queue the high-water mark is about). */
  queuedCount(): number {
    return this.queued;
  }

  // ---- intake -------------------------------------------------------------------------------

  /**
   * Stores a new message and its dedup key in one transaction, or returns the stored answer for a
   * request_id already seen (also when the first copy is in the same group commit).
   */
  accept(input: AcceptInput): Promise<StoredResponse> {
    return this.tx((): StoredResponse => {
        const now = this.now();
        const id = newId("msg", now, this.random);
        const body = JSON.stringify({ id, request_id: input.requestId, status: "accepted" });
        if (input.requestId !== null) {
          const r = this.s.dedupInsert!.run(input.accountId, input.requestId, id, 200, body, input.bodyHash, now);
          if (r.changes === 0) return this.replay(input.accountId, input.requestId, input.bodyHash);
        }
        this.s.messageInsert!.run(
          id,
          input.accountId,
          input.requestId,
          input.channel,
          now,
          now,
          now,
          input.expiresAt,
          historyLine(now, "accepted"),
          JSON.stringify(input.payload),
        );
        this.queuedDelta++;
        return { status: 200, body, replay: false, bodyDiffers: false, messageId: id };
      });
  }

  /** Remembers a permanent refusal (400/403) for a request_id so a retry gets the same answer. */
  rememberRefusal(accountId: string, requestId: string, status: number, body: string, bodyHash: string): Promise<StoredResponse> {
    return this.writer.write((): StoredResponse => {
      const r = this.s.dedupInsert!.run(accountId, requestId, null, status, body, bodyHash, this.now());
      if (r.changes === 0) return this.replay(accountId, requestId, bodyHash);
      return { status, body, replay: false, bodyDiffers: false, messageId: null };
    });
  }

  async lookupRequest(accountId: string, requestId: string, bodyHash: string): Promise<StoredResponse | null> {
    const r = this.readRequest(accountId, requestId, bodyHash);
    // The row may be committed but its fsync still running: an answer is only told once it is on disk.
    if (r) await this.writer.whenDurable();
    return r;
  }

  private readRequest(accountId: string, requestId: string, bodyHash: string): StoredResponse | null {
    const row = this.s.dedupGet!.get(accountId, requestId) as Row | null;
    if (!row) return null;
    return {
      status: row.status as number,
      body: row.response as string,
      replay: true,
      bodyDiffers: row.body_hash !== bodyHash,
      messageId: row.message_id as string | null,
    };
  }

  private replay(accountId: string, requestId: string, bodyHash: string): StoredResponse {
    return this.readRequest(accountId, requestId, bodyHash)!;
  }

  // ---- dispatching --------------------------------------------------------------------------

  /**
   * Claims up to `limit` messages due for a submit on `channel`: they become `submitting` in one
   * transaction before any of them is sent, each bound to the carrier `assign` picks for it now.
   * Messages past their validity are failed instead.
   */
  claimDue(channel: Channel, limit: number, assign?: (m: StoredMessage) => string): Promise<StoredMessage[]> {
    return this.tx(() => {
      const now = this.now();
      const rows = this.s.due!.all("accepted", channel, now, limit) as Row[];
      const claimed: StoredMessage[] = [];
      for (const row of rows) {
        const m = toMessage(row);
        const t = decideClaim(m, now, row.last_error as string | null, now < m.expiresAt ? assign?.(m) : undefined);
        this.apply(m, t);
        if (t.to === "submitting") claimed.push(m);
      }
      return claimed;
    });
  }

  /** The earliest time anything on `channel` is due in `state`, or null. */
  async nextDue(state: "accepted" | "submitted", channel: Channel): Promise<number | null> {
    return (this.s.nextDue!.get(state, channel) as { t: number | null }).t;
  }

  /**
   * Applies what the carrier said about a submit. `routing` (domain/route.ts afterAttempt) says whether
   * a retry must stay on this carrier, and whether a permanent refusal goes back for the next carrier.
   */
  recordSubmit(
    claimed: StoredMessage,
    carrier: string,
    result: SubmitResult,
    routing: { pin: boolean; elsewhere: boolean } = { pin: false, elsewhere: false },
  ): Promise<SubmitVerdict> {
    return this.tx(() => {
      // A copy: if this transaction fails, the caller retries from the state that is really stored.
      const m = { ...claimed };
      const now = this.now();
      const t = decideAfterSubmit(m, carrier, result, this.opts, now, this.random, routing);
      if (result.kind === "ok") result.carrierMessageIds.forEach((cid, part) => this.s.carrierIdInsert!.run(carrier, cid, m.id, part));
      this.apply(m, t);
      if (result.kind !== "ok") return submitVerdict(t);
      // Receipts that beat the submit answer (or named it in another base) were held; apply them now.
      let held = 0;
      for (const cid of result.carrierMessageIds) {
        const taken = this.s.earlyAt!.all(carrier, cid) as { receipt: string; received_at: number }[];
        for (const t of new Map(taken.map((x) => [x.receipt, x])).values()) {
          const r = JSON.parse(t.receipt) as CarrierReceipt;
          for (const key of heldKeys(cid, r)) this.s.earlyDelete!.run(carrier, key, t.receipt);
          this.applyReceiptNow(r, t.received_at);
          held++;
        }
      }
      if (held === 0) return { fallback: false, final: null };
      return verdictAfterHeldReceipts(this.stateOf(m.id));
    });
  }

  /** Recovery at start-up: messages left `submitting` by a crash (the submit may or may not have gone out). */
  recoverInFlight(): Promise<number> {
    return this.tx(() => {
      const now = this.now();
      const rows = this.db.query("SELECT * FROM messages WHERE state = 'submitting' AND due_at IS NOT NULL").all() as Row[];
      for (const row of rows) {
        const m = toMessage(row);
        this.apply(m, decideInFlight(m, this.opts, now));
      }
      return rows.length;
    });
  }

  /** Carrier ids still waiting for their report, with the recipient (for a carrier's resume). */
  async openCarrierIds(carrier: string): Promise<{ carrierMessageId: string; to: string }[]> {
    return (
      this.db
        .query(
          "SELECT c.carrier_id AS id, m.payload AS payload FROM carrier_ids c JOIN messages m ON m.id = c.message_id WHERE c.carrier = ? AND c.outcome IS NULL AND m.state = 'submitted'",
        )
        .all(carrier) as { id: string; payload: string }[]
    ).map((r) => ({ carrierMessageId: r.id, to: (JSON.parse(r.payload) as MessagePayload).to }));
  }

  /** Submitted messages whose receipt window ended: final `sent`. */
  expireReceiptWindows(limit: number): Promise<number> {
    return this.tx(() => {
      const now = this.now();
      let n = 0;
      for (const channel of ["mms", "sms"] as const) {
        for (const row of this.s.due!.all("submitted", channel, now, limit) as Row[]) {
          const m = toMessage(row);
          this.apply(m, decideReceiptWindowEnd(m, now));
          n++;
        }
      }
      return n;
    });
  }

  /** Drops held receipts older than `holdMs` and returns them (once each), so the caller can log each. */
  dropStaleEarlyReceipts(holdMs: number): Promise<{ carrier: string; carrier_id: string }[]> {
    return this.writer.write(() => {
      return oncePerReceipt(this.s.earlyExpire!.all(this.now() - holdMs) as Row[]);
    });
  }

  /** Held receipts, oldest first: each once, with every key it waits under. */
  async listUnmatchedReceipts(limit = 100): Promise<UnmatchedReceipt[]> {
    const rows = this.db
      .query(
        "SELECT carrier, json_group_array(carrier_id) AS ids, receipt, received_at FROM (SELECT * FROM early_receipts ORDER BY seq) GROUP BY carrier, receipt, received_at ORDER BY MIN(seq) LIMIT ?",
      )
      .all(limit) as { carrier: string; ids: string; receipt: string; received_at: number }[];
    return rows.map((r) => ({ carrier: r.carrier, carrierIds: JSON.parse(r.ids), receivedAt: r.received_at, receipt: JSON.parse(r.receipt) }));
  }

  // ---- receipts ------------------------------------------------------------------------------

  /**
   * Records a carrier receipt: idempotent. A receipt whose id matches no submitted message, or two
   * alike, is held under each key its id may stand for, until a submit answer names one of them.
   */
  applyReceipt(r: CarrierReceipt): Promise<ReceiptResult> {
    return this.tx(() => this.applyReceiptNow(r, this.now()));
  }

  private applyReceiptNow(r: CarrierReceipt, arrivedAt: number): ReceiptResult {
    if (r.outcome === "pending") return "ignored";
    const readings = this.idBases.narrow(r.carrier, r.readings ?? [{ key: r.carrierMessageId, base: "same" }]);
    const found: ReceiptCandidate[] = [];
    for (const reading of readings) {
      const link = this.s.carrierIdGet!.get(r.carrier, reading.key) as Row | null;
      if (link) found.push(toCandidate(reading, link));
    }
    const match = chooseCandidate(found, { to: r.to, arrivedAt });
    if (match.kind !== "match") {
      for (const reading of readings) this.s.earlyInsert!.run(r.carrier, reading.key, JSON.stringify(r), arrivedAt);
      return "unmatched";
    }
    const { key, messageId, open } = match.candidate;
    if (match.evidence) this.idBases.record(r.carrier, match.candidate.base);
    if (!open) return "duplicate";
    this.s.carrierIdSetOutcome!.run(r.outcome, r.carrier, key);
    const row = this.s.messageGet!.get(messageId) as Row | null;
    if (!row) return "ignored";
    const m = toMessage(row);
    if (m.state !== "submitted") return "duplicate";
    // Only the parts of this carrier's submit: after a fallback the failed MMS id is still on record.
    const parts = (this.s.partsOf!.all(m.id, r.carrier) as Row[]).map((p) => ({ carrierId: p.carrier_id as string, outcome: p.outcome as CarrierReceipt["outcome"] | null }));
    const t = decideReceipt(m, r, key, parts, this.opts.noMmsMemoryMs);
    if (t) this.apply(m, t);
    return "applied";
  }

  // ---- inbound (MO) -------------------------------------------------------------------------

  recordInbound(accountId: string, url: string, m: InboundMessage): Promise<string> {
    return this.writer.write(() => {
      const now = this.now();
      const eventId = newId("evt", now, this.random);
      const body = inboundEvent(eventId, m);
      this.s.eventInsert!.run(eventId, null, accountId, "inbound", url, JSON.stringify(body), now, now, now);
      return eventId;
    });
  }

  // ---- outbox -------------------------------------------------------------------------------

  /** Pending events due by `now`, oldest due first, each the oldest pending event of its message. */
  async dueEvents(now: number, limit: number, busy: WebhookKey[] = []): Promise<PendingEvent[]> {
    const due = (this.s.eventsDue!.all(now, JSON.stringify(busy), limit) as Row[]).map((r) => ({
      seq: r.seq as number,
      eventId: r.event_id as string,
      messageId: r.message_id as string | null,
      accountId: r.account_id as string,
      url: r.url as string,
      body: r.body as string,
      attempts: r.attempts as number,
      createdAt: r.created_at as number,
    }));
    // What was read may be committed but not yet fsynced, and a power cut could undo it: read first,
    // then wait for the disk, so the wait covers everything read (waiting first would not).
    if (due.length > 0) await this.writer.whenDurable();
    return due;
  }

  /** When the next pending event not yet due becomes due, or null. */
  async nextEventDue(now: number): Promise<number | null> {
    return (this.s.nextEventDue!.get(now) as { t: number | null }).t;
  }


  eventsDelivered(seqs: number[]): Promise<void> {
    return this.writer.write(() => {
      const now = this.now();
      for (const seq of seqs) this.s.eventDelivered!.run(now, seq);
    });
  }

  eventsRetry(seqs: number[], dueAt: number, error: string): Promise<void> {
    return this.writer.write(() => {
      const now = this.now();
      for (const seq of seqs) this.s.eventRetry!.run(now, dueAt, error, seq);
    });
  }

  eventsDead(seqs: number[], error: string): Promise<void> {
    return this.writer.write(() => {
      const now = this.now();
      for (const seq of seqs) this.s.eventDead!.run(now, error, seq);
    });
  }

  // ---- admin and housekeeping ---------------------------------------------------------------

  /** The message a carrier id belongs to, for log lines about a receipt. */
  async messageOfCarrierId(carrier: string, carrierMessageId: string): Promise<{ messageId: string; requestId: string | null } | null> {
    const row = this.db
      .query("SELECT m.id AS id, m.request_id AS request_id FROM carrier_ids c JOIN messages m ON m.id = c.message_id WHERE c.carrier = ? AND c.carrier_id = ?")
      .get(carrier, carrierMessageId) as Row | null;
    return row ? { messageId: row.id as string, requestId: row.request_id as string | null } : null;
  }

  async getMessage(id: string): Promise<StoredMessage | null> {
    const row = this.s.messageGet!.get(id) as Row | null;
    return row ? toMessage(row) : null;
  }

  /** Everything an operator needs about one message, by message id or request_id. */
  async describe(idOrRequestId: string): Promise<Record<string, unknown> | null> {
    let row = this.s.messageGet!.get(idOrRequestId) as Row | null;
    if (!row) row = this.db.query("SELECT * FROM messages WHERE request_id = ? ORDER BY id DESC LIMIT 1").get(idOrRequestId) as Row | null;
    if (!row) return null;
    const m = toMessage(row);
    return {
      ...m,
      carrier: row.carrier,
      lastError: row.last_error,
      dueAt: row.due_at,
      history: String(row.history)
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
      carrierIds: this.s.carrierIdsOf!.all(m.id),
      events: this.db
        .query("SELECT seq, event_id, kind, url, state, attempts, created_at, updated_at, due_at, last_error, body FROM events WHERE message_id = ? ORDER BY seq")
        .all(m.id),
    };
  }

  async listDeadEvents(limit = 100): Promise<Row[]> {
    return this.db.query("SELECT seq, event_id, message_id, account_id, url, attempts, created_at, updated_at, last_error FROM events WHERE state = 'dead' ORDER BY seq LIMIT ?").all(limit) as Row[];
  }

  /** Puts dead-lettered events back in the outbox (all, or the given sequence numbers). */
  requeueDead(seqs: number[] | "all"): Promise<number> {
    return this.writer.write(() => {
      const now = this.now();
      if (seqs === "all") return this.db.query("UPDATE events SET state = 'pending', due_at = ?, created_at = ?, updated_at = ? WHERE state = 'dead'").run(now, now, now).changes;
      let n = 0;
      const st = this.db.query("UPDATE events SET state = 'pending', due_at = ?, created_at = ?, updated_at = ? WHERE seq = ? AND state = 'dead'");
      for (const s of seqs) n += st.run(now, now, now, s).changes;
      return n;
    });
  }

  /**
   * Sends failed messages again as new attempts (operator's decision after fixing a cause). A fresh
   * validity window starts; the final event of the new attempt follows the earlier `failed` one.
   */
  retryFailed(filter: RetryFilter, validityMs: number): Promise<number> {
    return this.tx(() => {
      const now = this.now();
      const rows = this.db
        .query(
          `SELECT * FROM messages WHERE state = 'failed' AND updated_at >= ? AND (? IS NULL OR last_error LIKE ?) AND (? IS NULL OR account_id = ?) ORDER BY id LIMIT ?`,
        )
        .all(filter.since ?? 0, filter.errorCode ?? null, `%"code":"${filter.errorCode ?? ""}"%`, filter.accountId ?? null, filter.accountId ?? null, filter.limit ?? 1000) as Row[];
      for (const row of rows) {
        const m = toMessage(row);
        this.apply(m, decideOperatorRetry(m, now, validityMs));
        // The new attempt gets new carrier ids; the old ones' late receipts must not match it.
        this.db.query("DELETE FROM carrier_ids WHERE message_id = ?").run(m.id);
      }
      return rows.length;
    });
  }

  /** Deletes dedup keys past the window and finished messages and delivered events past retention. */
  /**
   * Everything past its time, in chunks of `chunk` rows per table, each chunk its own small write so
   * intake never waits behind one long delete; it goes on until nothing is left to delete.
   */
  async purge(dedupBefore: number, finishedBefore: number, chunk = 5000): Promise<{ dedup: number; messages: number; events: number }> {
    const total = { dedup: 0, messages: 0, events: 0 };
    const floor = idFloor("msg", finishedBefore);
    for (;;) {
      const n = await this.writer.write(() => {
        const dedup = this.db
          .query("DELETE FROM dedup WHERE (account_id, request_id) IN (SELECT account_id, request_id FROM dedup WHERE created_at < ? LIMIT ?)")
          .run(dedupBefore, chunk).changes;
        const ids = this.db.query("SELECT id FROM messages WHERE id < ? AND due_at IS NULL AND state IN ('delivered','failed','sent') LIMIT ?").all(floor, chunk) as Row[];
        const delMsg = this.db.query("DELETE FROM messages WHERE id = ?");
        const delIds = this.db.query("DELETE FROM carrier_ids WHERE message_id = ?");
        for (const r of ids) {
          delMsg.run(r.id as string);
          delIds.run(r.id as string);
        }
        const events = this.db
          .query("DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE state = 'delivered' AND updated_at < ? ORDER BY seq LIMIT ?)")
          .run(finishedBefore, chunk).changes;
        return { dedup, messages: ids.length, events };
      });
      total.dedup += n.dedup;
      total.messages += n.messages;
      total.events += n.events;
      if (n.dedup < chunk && n.messages < chunk && n.events < chunk) return total;
    }
  }

  /** Queue depth and oldest age by state, for metrics and the status page. */
  async queueStats(): Promise<{ state: string; channel: string; count: number; oldest: number | null }[]> {
    return this.db
      .query("SELECT state, channel, COUNT(*) AS count, MIN(updated_at) AS oldest FROM messages WHERE due_at IS NOT NULL GROUP BY state, channel")
      .all() as { state: string; channel: string; count: number; oldest: number | null }[];
  }

  async eventStats(): Promise<{ state: string; count: number; oldest: number | null }[]> {
    return this.db
      .query("SELECT state, COUNT(*) AS count, MIN(created_at) AS oldest FROM events WHERE state IN ('pending','dead') GROUP BY state")
      .all() as { state: string; count: number; oldest: number | null }[];
  }

  /** One box: this process is the only node, and alive while it can answer. */
  async nodes(): Promise<NodeInfo[]> {
    const id = this.opts.nodeId;
    return id ? [{ id, startedAt: this.startedAt, seenAt: this.now(), live: true }] : [];
  }

  // ---- transitions (inside a write) ---------------------------------------------------------

  private stateOf(id: string): MessageState {
    return (this.s.messageGet!.get(id) as Row).state as MessageState;
  }

  /**
   * Writes a decided transition as a compare-and-set on the state it was decided from, with its event
   * in the same transaction (the caller's); `m` then shows the new state.
   */
  private apply(m: StoredMessage, t: Transition): void {
    const now = this.now();
    const r = this.s.setState!.run(
      t.to,
      t.dueAt,
      now,
      t.attemptsDelta,
      t.channel,
      t.fallback ? 1 : 0,
      t.carrier,
      t.error ? JSON.stringify(t.error) : null,
      t.expiresAt ?? null,
      historyLine(now, t.to, t.detail),
      m.id,
      t.from,
    );
    // The compare-and-set lost: someone else moved it first. Never apply a transition twice.
    if (r.changes !== 1) throw new Error(`message ${m.id} is no longer ${t.from}`);
    Object.assign(m, { state: t.to, channel: t.channel, fallback: t.fallback, attempts: m.attempts + t.attemptsDelta });
    if (t.carrier !== null) m.carrier = t.carrier;
    if (t.routing) {
      this.s.setRouting!.run(t.routing.pinned, t.routing.refused.join(","), m.id);
      Object.assign(m, t.routing);
    }
    if (t.expiresAt !== undefined) m.expiresAt = t.expiresAt;
    if (t.fallbackReason !== undefined) {
      m.fallbackReason = t.fallbackReason;
      this.s.setFallbackReason!.run(t.fallbackReason, m.id);
    }
    if (t.noMms) this.media.rememberInWrite(t.noMms);
    if (waitsForCarrier(t.from) !== waitsForCarrier(t.to)) this.queuedDelta += waitsForCarrier(t.to) ? 1 : -1;
    if (t.event) {
      const eventId = newId("evt", now, this.random);
      const body = deliveryEvent(m, t.event.status, eventId, t.event.at, t.event.carrierMessageId, t.event.error);
      this.s.eventInsert!.run(eventId, m.id, m.accountId, t.event.status, m.payload.callback_url, JSON.stringify(body), now, now, now);
    }
    if (t.outcome) this.outcomes.push(t.outcome);
  }
}
