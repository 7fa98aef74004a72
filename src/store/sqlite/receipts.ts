// What carriers send back: receipts (matched, or held until a submit answer names them) and inbound messages.
import type { CarrierReceipt, InboundMessage } from "../../../adapters/carrier.ts";
import { inboundEvent, newId } from "../../domain/event.ts";
import type { ReceiptResult, UnmatchedReceipt } from "../index.ts";
import { oncePerReceipt } from "../rows.ts";
import type { Row, SqliteCore } from "./core.ts";

/**
 * Records a carrier receipt: idempotent. A receipt whose id matches no submitted message, or two
 * alike, is held under each key its id may stand for, until a submit answer names one of them.
 */
export function applyReceipt(c: SqliteCore, r: CarrierReceipt): Promise<ReceiptResult> {
  return c.tx(() => c.applyReceiptNow(r, c.now()));
}

/** Drops held receipts older than `holdMs` and returns them (once each), so the caller can log each. */
export function dropStaleEarlyReceipts(c: SqliteCore, holdMs: number): Promise<{ carrier: string; carrier_id: string }[]> {
  return c.writer.write(() => {
    return oncePerReceipt(c.s.earlyExpire!.all(c.now() - holdMs) as Row[]);
  });
}

/** Held receipts, oldest first: each once, with every key it waits under. */
export async function listUnmatchedReceipts(c: SqliteCore, limit = 100): Promise<UnmatchedReceipt[]> {
  const rows = c.db
    .query(
      "SELECT carrier, json_group_array(carrier_id) AS ids, receipt, received_at FROM (SELECT * FROM early_receipts ORDER BY seq) GROUP BY carrier, receipt, received_at ORDER BY MIN(seq) LIMIT ?",
    )
    .all(limit) as { carrier: string; ids: string; receipt: string; received_at: number }[];
  return rows.map((r) => ({ carrier: r.carrier, carrierIds: JSON.parse(r.ids), receivedAt: r.received_at, receipt: JSON.parse(r.receipt) }));
}

/** An inbound message (MO): one event in the outbox. */
export function recordInbound(c: SqliteCore, accountId: string, url: string, m: InboundMessage): Promise<string> {
  return c.writer.write(() => {
    const now = c.now();
    const eventId = newId("evt", now, c.random);
    const body = inboundEvent(eventId, m);
    c.s.eventInsert!.run(eventId, null, accountId, "inbound", url, JSON.stringify(body), now, now, now);
    return eventId;
  });
}
