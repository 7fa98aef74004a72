// The outbox across nodes: events are leased to the node sending them, a message's next event waits for
// the last one, and one node at a time posts to an (account, URL).
import type { PendingEvent, WebhookKey } from "../index.ts";
import { toPendingEvent } from "../rows.ts";
import { channelName, type PostgresCore } from "./core.ts";

/**
 * Claims due events for this node (a lease, renewed by the heartbeat while the node lives): another
 * node's lease is skipped, this node's own are returned again (its outbox knows what it is sending).
 * A (account, URL) of which another node holds any event is skipped whole, so one node at a time posts
 * to it; the claims are serialised cluster-wide so two nodes cannot both find a key free.
 */
export function dueEvents(c: PostgresCore, now: number, limit: number, busy: WebhookKey[] = []): Promise<PendingEvent[]> {
  return c.tx(async (tx) => {
    const me = c.node;
    await tx`SELECT pg_advisory_xact_lock(hashtextextended('gateway:outbox-claim', 0))`;
    const rows = await tx`UPDATE events SET lease_node = ${me}, lease_until = ${now + c.leaseMs} WHERE seq IN (
        SELECT seq FROM events e WHERE state = 'pending' AND due_at <= ${now}
          AND (lease_node IS NULL OR lease_node = ${me} OR lease_until < ${now})
          AND NOT EXISTS (SELECT 1 FROM events k WHERE k.account_id = e.account_id AND k.url = e.url AND k.state = 'pending'
            AND k.lease_node IS NOT NULL AND k.lease_node <> ${me} AND k.lease_until >= ${now})
          AND (e.account_id, e.url) NOT IN (SELECT * FROM unnest(${busy.map((k) => k.accountId)}::text[], ${busy.map((k) => k.url)}::text[]))
          AND (message_id IS NULL OR NOT EXISTS (SELECT 1 FROM events o WHERE o.message_id = e.message_id AND o.state = 'pending' AND o.seq < e.seq))
        ORDER BY due_at, seq LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING seq, event_id, message_id, account_id, url, body, attempts, created_at, due_at`;
    rows.sort((a, b) => (a.due_at as number) - (b.due_at as number) || (a.seq as number) - (b.seq as number));
    return rows.map(toPendingEvent);
  });
}

export function nextEventDue(c: PostgresCore, now: number): Promise<number | null> {
  return c.read(async (sql) => {
    const [r] = await sql`SELECT MIN(due_at) AS t FROM events WHERE state = 'pending' AND due_at > ${now}`;
    return (r?.t as number | null) ?? null;
  });
}

export async function eventsDelivered(c: PostgresCore, seqs: number[]): Promise<void> {
  await c.tx(async (tx) => {
    await tx`UPDATE events SET state = 'delivered', attempts = attempts + 1, updated_at = ${c.now()}, due_at = NULL, last_error = NULL, lease_node = NULL, lease_until = NULL
      WHERE seq = ANY(${seqs}::bigint[]) AND state = 'pending'`;
    // The next event of these messages is due now, maybe at another node.
    await tx`SELECT pg_notify(${channelName}, 'events')`;
  });
}

export async function eventsRetry(c: PostgresCore, seqs: number[], dueAt: number, error: string): Promise<void> {
  await c.tx(
    (tx) => tx`UPDATE events SET attempts = attempts + 1, updated_at = ${c.now()}, due_at = ${dueAt}, last_error = ${error}, lease_node = NULL, lease_until = NULL
      WHERE seq = ANY(${seqs}::bigint[]) AND state = 'pending'`,
  );
}

export async function eventsDead(c: PostgresCore, seqs: number[], error: string): Promise<void> {
  await c.tx(
    (tx) => tx`UPDATE events SET state = 'dead', attempts = attempts + 1, updated_at = ${c.now()}, due_at = NULL, last_error = ${error}, lease_node = NULL, lease_until = NULL
      WHERE seq = ANY(${seqs}::bigint[]) AND state = 'pending'`,
  );
}
