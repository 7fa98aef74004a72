// What carriers send back, on any node: receipts (matched through the shared tables, or held where the
// submit answer naming them looks) and inbound messages.
import type { CarrierReceipt, InboundMessage } from "../../../adapters/carrier.ts";
import { inboundEvent, newId } from "../../domain/event.ts";
import type { ReceiptResult, UnmatchedReceipt } from "../index.ts";
import { oncePerReceipt } from "../rows.ts";
import { channelName, type PostgresCore } from "./core.ts";

/**
 * Records a carrier receipt: idempotent. A receipt whose id matches no submitted message, or two
 * alike, is held under each key its id may stand for, until a submit answer names one of them.
 */
export function applyReceipt(c: PostgresCore, r: CarrierReceipt): Promise<ReceiptResult> {
  return c.tx((tx, done) => c.applyReceiptIn(tx, r, c.now(), done));
}

/** Drops held receipts older than `holdMs` and returns them (once each), so the caller can log each. */
export function dropStaleEarlyReceipts(c: PostgresCore, holdMs: number): Promise<{ carrier: string; carrier_id: string }[]> {
  return c.tx(async (tx) => {
    return oncePerReceipt(await tx`DELETE FROM early_receipts WHERE received_at < ${c.now() - holdMs} RETURNING seq, carrier, carrier_id, receipt`);
  });
}

/** Held receipts, oldest first: each once, with every key it waits under. */
export function listUnmatchedReceipts(c: PostgresCore, limit = 100): Promise<UnmatchedReceipt[]> {
  return c.read(async (sql) => {
    const rows = await sql`SELECT carrier, json_agg(carrier_id ORDER BY seq) AS ids, receipt, received_at FROM early_receipts
      GROUP BY carrier, receipt, received_at ORDER BY MIN(seq) LIMIT ${limit}`;
    return rows.map((r) => ({ carrier: r.carrier as string, carrierIds: r.ids as string[], receivedAt: r.received_at as number, receipt: JSON.parse(r.receipt as string) }));
  });
}

/** An inbound message (MO): one event in the outbox. */
export function recordInbound(c: PostgresCore, accountId: string, url: string, m: InboundMessage): Promise<string> {
  // One statement, its own transaction: the event and the wake-up in one round trip.
  return c.statement(async (sql) => {
    const now = c.now();
    const eventId = newId("evt", now, c.random);
    const body = inboundEvent(eventId, m);
    await sql`WITH e AS (INSERT INTO events (event_id, message_id, account_id, kind, url, body, state, attempts, created_at, updated_at, due_at)
      VALUES (${eventId}, NULL, ${accountId}, 'inbound', ${url}, ${JSON.stringify(body)}, 'pending', 0, ${now}, ${now}, ${now}) RETURNING 1)
      SELECT pg_notify(${channelName}, 'events') FROM e`;
    return eventId;
  });
}
