// Operator queries and actions, and housekeeping: describe, dead letters, retries, purge, statistics.
import { decideOperatorRetry } from "../../domain/decisions.ts";
import { idFloor } from "../../domain/event.ts";
import type { StoredMessage } from "../../domain/message.ts";
import type { RetryFilter, Row } from "../index.ts";
import { describeRow, toMessage } from "../rows.ts";
import { channelName, type PostgresCore } from "./core.ts";

export function messageOfCarrierId(c: PostgresCore, carrier: string, carrierMessageId: string): Promise<{ messageId: string; requestId: string | null } | null> {
  return c.read(async (sql) => {
    const [r] = await sql`SELECT m.id, m.request_id FROM carrier_ids c JOIN messages m ON m.id = c.message_id WHERE c.carrier = ${carrier} AND c.carrier_id = ${carrierMessageId}`;
    return r ? { messageId: r.id as string, requestId: r.request_id as string | null } : null;
  });
}

export function getMessage(c: PostgresCore, id: string): Promise<StoredMessage | null> {
  return c.read(async (sql) => {
    const [r] = await sql`SELECT * FROM messages WHERE id = ${id}`;
    return r ? toMessage(r) : null;
  });
}

export function describe(c: PostgresCore, idOrRequestId: string): Promise<Record<string, unknown> | null> {
  return c.read(async (sql) => {
    let [row] = await sql`SELECT * FROM messages WHERE id = ${idOrRequestId}`;
    if (!row) [row] = await sql`SELECT * FROM messages WHERE request_id = ${idOrRequestId} ORDER BY id DESC LIMIT 1`;
    if (!row) return null;
    const id = row.id as string;
    return {
      ...describeRow(row),
      lease: row.lease_node ? { node: row.lease_node, until: row.lease_until } : null,
      carrierIds: [...(await sql`SELECT carrier, carrier_id, part, outcome FROM carrier_ids WHERE message_id = ${id} ORDER BY carrier, part`)],
      events: [...(await sql`SELECT seq, event_id, kind, url, state, attempts, created_at, updated_at, due_at, last_error, body FROM events WHERE message_id = ${id} ORDER BY seq`)],
    };
  });
}

export function listDeadEvents(c: PostgresCore, limit = 100): Promise<Row[]> {
  return c.read(async (sql) => [
    ...(await sql`SELECT seq, event_id, message_id, account_id, url, attempts, created_at, updated_at, last_error FROM events WHERE state = 'dead' ORDER BY seq LIMIT ${limit}`),
  ]);
}

export function requeueDead(c: PostgresCore, seqs: number[] | "all"): Promise<number> {
  return c.tx(async (tx) => {
    const now = c.now();
    const r =
      seqs === "all"
        ? await tx`UPDATE events SET state = 'pending', due_at = ${now}, created_at = ${now}, updated_at = ${now} WHERE state = 'dead'`
        : await tx`UPDATE events SET state = 'pending', due_at = ${now}, created_at = ${now}, updated_at = ${now} WHERE seq = ANY(${seqs}::bigint[]) AND state = 'dead'`;
    await tx`SELECT pg_notify(${channelName}, 'events')`;
    return r.count;
  });
}

export function retryFailed(c: PostgresCore, filter: RetryFilter, validityMs: number): Promise<number> {
  return c.tx(async (tx, done) => {
    const now = c.now();
    const rows = await tx`SELECT * FROM messages WHERE state = 'failed' AND updated_at >= ${filter.since ?? 0}
      AND (${filter.errorCode ?? null}::text IS NULL OR last_error LIKE ${`%"code":"${filter.errorCode ?? ""}"%`})
      AND (${filter.accountId ?? null}::text IS NULL OR account_id = ${filter.accountId ?? null})
      ORDER BY id LIMIT ${filter.limit ?? 1000} FOR UPDATE SKIP LOCKED`;
    for (const row of rows) {
      const m = toMessage(row);
      await c.apply(tx, m, decideOperatorRetry(m, now, validityMs), done);
      // The new attempt gets new carrier ids; the old ones' late receipts must not match it.
      await tx`DELETE FROM carrier_ids WHERE message_id = ${m.id}`;
    }
    return rows.length;
  });
}

export async function purge(c: PostgresCore, dedupBefore: number, finishedBefore: number, chunk = 5000): Promise<{ dedup: number; messages: number; events: number }> {
  const total = { dedup: 0, messages: 0, events: 0 };
  const floor = idFloor("msg", finishedBefore);
  for (;;) {
    const n = await c.tx(async (tx) => {
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
export function queueStats(c: PostgresCore): Promise<{ state: string; channel: string; count: number; oldest: number | null }[]> {
  return c.read(async (sql) =>
    (await sql`SELECT state, channel, COUNT(*)::int AS count, MIN(updated_at) AS oldest FROM messages WHERE due_at IS NOT NULL GROUP BY state, channel`).map((r) => ({
      state: r.state as string,
      channel: r.channel as string,
      count: r.count as number,
      oldest: r.oldest as number | null,
    })),
  );
}

export function eventStats(c: PostgresCore): Promise<{ state: string; count: number; oldest: number | null }[]> {
  return c.read(async (sql) =>
    (await sql`SELECT state, COUNT(*)::int AS count, MIN(created_at) AS oldest FROM events WHERE state IN ('pending','dead') GROUP BY state`).map((r) => ({
      state: r.state as string,
      count: r.count as number,
      oldest: r.oldest as number | null,
    })),
  );
}
