// Dispatching: claims of due messages, what a carrier said about a submit, recovery of submits in
// flight at a crash, and the end of receipt windows.
import type { CarrierReceipt, SubmitResult } from "../../../adapters/carrier.ts";
import { decideAfterSubmit, decideClaim, decideInFlight, decideReceiptWindowEnd, submitVerdict, verdictAfterHeldReceipts, type SubmitVerdict } from "../../domain/decisions.ts";
import type { Channel, MessagePayload, StoredMessage } from "../../domain/message.ts";
import { heldKeys } from "../../domain/receipt-match.ts";
import { toMessage } from "../rows.ts";
import type { Row, SqliteCore } from "./core.ts";

/**
 * Claims up to `limit` messages due for a submit on `channel`: they become `submitting` in one
 * transaction before any of them is sent, each bound to the carrier `assign` picks for it now (null:
 * left for another node). Messages past their validity are failed instead.
 */
export function claimDue(c: SqliteCore, channel: Channel, limit: number, assign?: (m: StoredMessage) => string | null): Promise<StoredMessage[]> {
  return c.tx(() => {
    const now = c.now();
    const rows = c.s.due!.all("accepted", channel, now, limit) as Row[];
    const claimed: StoredMessage[] = [];
    for (const row of rows) {
      const m = toMessage(row);
      const t = decideClaim(m, now, row.last_error as string | null, assign);
      if (t === null) continue;
      c.apply(m, t);
      if (t.to === "submitting") claimed.push(m);
    }
    return claimed;
  });
}

/** The earliest time anything on `channel` is due in `state`, or null. */
export async function nextDue(c: SqliteCore, state: "accepted" | "submitted", channel: Channel): Promise<number | null> {
  return (c.s.nextDue!.get(state, channel) as { t: number | null }).t;
}

/**
 * Applies what the carrier said about a submit. `routing` (domain/route.ts afterAttempt) says whether
 * a retry must stay on this carrier, and whether a permanent refusal goes back for the next carrier.
 */
export function recordSubmit(
  c: SqliteCore,
  claimed: StoredMessage,
  carrier: string,
  result: SubmitResult,
  routing: { pin: boolean; elsewhere: boolean } = { pin: false, elsewhere: false },
): Promise<SubmitVerdict> {
  return c.tx(() => {
    // A copy: if this transaction fails, the caller retries from the state that is really stored.
    const m = { ...claimed };
    const now = c.now();
    const t = decideAfterSubmit(m, carrier, result, c.opts, now, c.random, routing);
    if (result.kind === "ok") result.carrierMessageIds.forEach((cid, part) => c.s.carrierIdInsert!.run(carrier, cid, m.id, part));
    c.apply(m, t);
    if (result.kind !== "ok") return submitVerdict(t);
    // Receipts that beat the submit answer (or named it in another base) were held; apply them now.
    let held = 0;
    for (const cid of result.carrierMessageIds) {
      const taken = c.s.earlyAt!.all(carrier, cid) as { receipt: string; received_at: number }[];
      for (const t of new Map(taken.map((x) => [x.receipt, x])).values()) {
        const r = JSON.parse(t.receipt) as CarrierReceipt;
        for (const key of heldKeys(cid, r)) c.s.earlyDelete!.run(carrier, key, t.receipt);
        c.applyReceiptNow(r, t.received_at);
        held++;
      }
    }
    if (held === 0) return { fallback: false, final: null };
    return verdictAfterHeldReceipts(c.stateOf(m.id));
  });
}

/** Recovery at start-up: messages left `submitting` by a crash (the submit may or may not have gone out). */
export function recoverInFlight(c: SqliteCore): Promise<number> {
  return c.tx(() => {
    const now = c.now();
    const rows = c.db.query("SELECT * FROM messages WHERE state = 'submitting' AND due_at IS NOT NULL").all() as Row[];
    for (const row of rows) {
      const m = toMessage(row);
      c.apply(m, decideInFlight(m, c.opts, now));
    }
    return rows.length;
  });
}

/** Carrier ids still waiting for their report, with the recipient (for a carrier's resume). */
export async function openCarrierIds(c: SqliteCore, carrier: string): Promise<{ carrierMessageId: string; to: string }[]> {
  return (
    c.db
      .query(
        "SELECT c.carrier_id AS id, m.payload AS payload FROM carrier_ids c JOIN messages m ON m.id = c.message_id WHERE c.carrier = ? AND c.outcome IS NULL AND m.state = 'submitted'",
      )
      .all(carrier) as { id: string; payload: string }[]
  ).map((r) => ({ carrierMessageId: r.id, to: (JSON.parse(r.payload) as MessagePayload).to }));
}

/** Submitted messages whose receipt window ended: final `sent`. */
export function expireReceiptWindows(c: SqliteCore, limit: number): Promise<number> {
  return c.tx(() => {
    const now = c.now();
    let n = 0;
    for (const channel of ["mms", "sms"] as const) {
      for (const row of c.s.due!.all("submitted", channel, now, limit) as Row[]) {
        const m = toMessage(row);
        c.apply(m, decideReceiptWindowEnd(m, now));
        n++;
      }
    }
    return n;
  });
}
