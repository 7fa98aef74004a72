// What every part of the SQLite driver shares: the database, its prepared statements, the group-commit
// write path, and what is written inside other writes (a decided transition, a receipt). The parts
// (intake, dispatch, receipts, outbox, admin, media) build on this; store.ts is the driver's face.
import type { Database, Statement } from "bun:sqlite";
import type { CarrierReceipt } from "../../../adapters/carrier.ts";
import { decideReceipt, waitsForCarrier, type Outcome, type Transition } from "../../domain/decisions.ts";
import { deliveryEvent, newId } from "../../domain/event.ts";
import type { MessageState, StoredMessage } from "../../domain/message.ts";
import { chooseCandidate, IdBaseLearning, type ReceiptCandidate } from "../../domain/receipt-match.ts";
import type { ReceiptResult, StoreOptions } from "../index.ts";
import { historyLine, toCandidate, toMessage } from "../rows.ts";
import { GroupCommit, type WalSync } from "./db.ts";
import { SqliteMedia } from "./media.ts";

/** SQLite's own options beside the engine-neutral ones. */
export interface SqliteOptions extends StoreOptions {
  /** Checkpoint the WAL on a worker thread instead of inside COMMIT (the running gateway does). */
  backgroundCheckpoints?: boolean;
  /** How the WAL is fsynced (default fdatasync). */
  walSync?: WalSync;
  /** This process's node id (null or absent: a tool, no node). */
  nodeId?: string | null;
}

export type Row = Record<string, string | number | null>;

export class SqliteCore {
  readonly writer: GroupCommit;
  readonly now: () => number;
  readonly random: () => number;
  readonly s: Record<string, Statement>;
  /**
   * Messages waiting for a carrier (accepted or submitting): the queue the high-water mark is about.
   * Kept in memory so the check costs nothing per request; every transition adjusts it in apply().
   */
  queued = 0;
  /** Each carrier's id base as its receipts show it (receipt_id_base = "learn"). */
  readonly idBases = new IdBaseLearning();
  readonly media: SqliteMedia;

  constructor(
    readonly db: Database,
    readonly opts: SqliteOptions,
  ) {
    this.writer = new GroupCommit(db, opts.walSync);
    this.writer.onFsyncFailure = opts.onDurabilityLost ?? null;
    this.now = opts.now;
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
      // Sorted by part in JavaScript: ORDER BY here builds a temporary B-tree per call (~10 µs for a one-row answer).
      partsOf: q("SELECT carrier_id, part, outcome FROM carrier_ids WHERE message_id = ? AND carrier = ?"),
      earlyInsert: q("INSERT INTO early_receipts (carrier, carrier_id, receipt, received_at) VALUES (?, ?, ?, ?)"),
      earlyAt: q("SELECT receipt, received_at FROM early_receipts WHERE carrier = ? AND carrier_id = ?"),
      // By key and text, so the index is used: on the submit path, a scan would cost every held receipt.
      earlyDelete: q("DELETE FROM early_receipts WHERE carrier = ? AND carrier_id = ? AND receipt = ?"),
      earlyExpire: q("DELETE FROM early_receipts WHERE received_at < ? RETURNING seq, carrier, carrier_id, receipt"),
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

  /** Change to `queued` made by the write running now; applied only once its transaction commits. */
  queuedDelta = 0;
  /** Outcomes of the write running now; reported only once its transaction commits. */
  private outcomes: Outcome[] = [];

  /** A write whose effect on the queue count lands only after it is durable. */
  tx<T>(fn: () => T): Promise<T> {
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

  // ---- inside a write: a decided transition, a receipt -------------------------------------

  stateOf(id: string): MessageState {
    return (this.s.messageGet!.get(id) as Row).state as MessageState;
  }

  /**
   * Writes a decided transition as a compare-and-set on the state it was decided from, with its event
   * in the same transaction (the caller's); `m` then shows the new state.
   */
  apply(m: StoredMessage, t: Transition): void {
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

  /** A receipt inside the caller's write (also a held one, from recordSubmit). */
  applyReceiptNow(r: CarrierReceipt, arrivedAt: number): ReceiptResult {
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
    const parts = (this.s.partsOf!.all(m.id, r.carrier) as Row[])
      .sort((a, b) => (a.part as number) - (b.part as number))
      .map((p) => ({ carrierId: p.carrier_id as string, outcome: p.outcome as CarrierReceipt["outcome"] | null }));
    const t = decideReceipt(m, r, key, parts, this.opts.noMmsMemoryMs);
    if (t) this.apply(m, t);
    return "applied";
  }
}
