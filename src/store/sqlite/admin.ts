// Operator queries and actions, and housekeeping: describe, dead letters, retries, purge, statistics.
import { decideOperatorRetry } from "../../domain/decisions.ts";
import { idFloor } from "../../domain/event.ts";
import type { StoredMessage } from "../../domain/message.ts";
import type { RetryFilter } from "../index.ts";
import { describeRow, toMessage } from "../rows.ts";
import type { Row, SqliteCore } from "./core.ts";

/** The message a carrier id belongs to, for log lines about a receipt. */
export async function messageOfCarrierId(c: SqliteCore, carrier: string, carrierMessageId: string): Promise<{ messageId: string; requestId: string | null } | null> {
  const row = c.db
    .query("SELECT m.id AS id, m.request_id AS request_id FROM carrier_ids c JOIN messages m ON m.id = c.message_id WHERE c.carrier = ? AND c.carrier_id = ?")
    .get(carrier, carrierMessageId) as Row | null;
  return row ? { messageId: row.id as string, requestId: row.request_id as string | null } : null;
}

export async function getMessage(c: SqliteCore, id: string): Promise<StoredMessage | null> {
  const row = c.s.messageGet!.get(id) as Row | null;
  return row ? toMessage(row) : null;
}

/** Everything an operator needs about one message, by message id or request_id. */
export async function describe(c: SqliteCore, idOrRequestId: string): Promise<Record<string, unknown> | null> {
  let row = c.s.messageGet!.get(idOrRequestId) as Row | null;
  if (!row) row = c.db.query("SELECT * FROM messages WHERE request_id = ? ORDER BY id DESC LIMIT 1").get(idOrRequestId) as Row | null;
  if (!row) return null;
  const id = row.id as string;
  return {
    ...describeRow(row),
    carrierIds: c.s.carrierIdsOf!.all(id),
    events: c.db
      .query("SELECT seq, event_id, kind, url, state, attempts, created_at, updated_at, due_at, last_error, body FROM events WHERE message_id = ? ORDER BY seq")
      .all(id),
  };
}

export async function listDeadEvents(c: SqliteCore, limit = 100): Promise<Row[]> {
  return c.db.query("SELECT seq, event_id, message_id, account_id, url, attempts, created_at, updated_at, last_error FROM events WHERE state = 'dead' ORDER BY seq LIMIT ?").all(limit) as Row[];
}

/** Puts dead-lettered events back in the outbox (all, or the given sequence numbers). */
export function requeueDead(c: SqliteCore, seqs: number[] | "all"): Promise<number> {
  return c.writer.write(() => {
    const now = c.now();
    if (seqs === "all") return c.db.query("UPDATE events SET state = 'pending', due_at = ?, created_at = ?, updated_at = ? WHERE state = 'dead'").run(now, now, now).changes;
    let n = 0;
    const st = c.db.query("UPDATE events SET state = 'pending', due_at = ?, created_at = ?, updated_at = ? WHERE seq = ? AND state = 'dead'");
    for (const s of seqs) n += st.run(now, now, now, s).changes;
    return n;
  });
}

/**
 * Sends failed messages again as new attempts (operator's decision after fixing a cause). A fresh
 * validity window starts; the final event of the new attempt follows the earlier `failed` one.
 */
export function retryFailed(c: SqliteCore, filter: RetryFilter, validityMs: number): Promise<number> {
  return c.tx(() => {
    const now = c.now();
    const rows = c.db
      .query(`SELECT * FROM messages WHERE state = 'failed' AND updated_at >= ? AND (? IS NULL OR last_error LIKE ?) AND (? IS NULL OR account_id = ?) ORDER BY id LIMIT ?`)
      .all(filter.since ?? 0, filter.errorCode ?? null, `%"code":"${filter.errorCode ?? ""}"%`, filter.accountId ?? null, filter.accountId ?? null, filter.limit ?? 1000) as Row[];
    for (const row of rows) {
      const m = toMessage(row);
      c.apply(m, decideOperatorRetry(m, now, validityMs));
      // The new attempt gets new carrier ids; the old ones' late receipts must not match it.
      c.db.query("DELETE FROM carrier_ids WHERE message_id = ?").run(m.id);
    }
    return rows.length;
  });
}

/**
 * Deletes dedup keys past the window and finished messages and delivered events past retention, in
 * chunks of `chunk` rows per table, each chunk its own small write so intake never waits behind one
 * long delete; it goes on until nothing is left to delete.
 */
export async function purge(c: SqliteCore, dedupBefore: number, finishedBefore: number, chunk = 5000): Promise<{ dedup: number; messages: number; events: number }> {
  const total = { dedup: 0, messages: 0, events: 0 };
  const floor = idFloor("msg", finishedBefore);
  for (;;) {
    const n = await c.writer.write(() => {
      const dedup = c.db
        .query("DELETE FROM dedup WHERE (account_id, request_id) IN (SELECT account_id, request_id FROM dedup WHERE created_at < ? LIMIT ?)")
        .run(dedupBefore, chunk).changes;
      const ids = c.db.query("SELECT id FROM messages WHERE id < ? AND due_at IS NULL AND state IN ('delivered','failed','sent') LIMIT ?").all(floor, chunk) as Row[];
      const delMsg = c.db.query("DELETE FROM messages WHERE id = ?");
      const delIds = c.db.query("DELETE FROM carrier_ids WHERE message_id = ?");
      for (const r of ids) {
        delMsg.run(r.id as string);
        delIds.run(r.id as string);
      }
      const events = c.db
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
export async function queueStats(c: SqliteCore): Promise<{ state: string; channel: string; count: number; oldest: number | null }[]> {
  return c.db
    .query("SELECT state, channel, COUNT(*) AS count, MIN(updated_at) AS oldest FROM messages WHERE due_at IS NOT NULL GROUP BY state, channel")
    .all() as { state: string; channel: string; count: number; oldest: number | null }[];
}

export async function eventStats(c: SqliteCore): Promise<{ state: string; count: number; oldest: number | null }[]> {
  return c.db
    .query("SELECT state, COUNT(*) AS count, MIN(created_at) AS oldest FROM events WHERE state IN ('pending','dead') GROUP BY state")
    .all() as { state: string; count: number; oldest: number | null }[];
}
