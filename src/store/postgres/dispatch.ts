// Dispatching: claims of due messages (FOR UPDATE SKIP LOCKED, with a lease), what a carrier said about
// a submit, recovery of claims left by a restart or a dead node, and the end of receipt windows.
import type { CarrierReceipt, SubmitResult } from "../../../adapters/carrier.ts";
import { decideAfterSubmit, decideClaim, decideReceiptWindowEnd, submitVerdict, verdictAfterHeldReceipts, type SubmitVerdict } from "../../domain/decisions.ts";
import type { Channel, MessagePayload, MessageState, StoredMessage } from "../../domain/message.ts";
import { heldKeys } from "../../domain/receipt-match.ts";
import { toMessage } from "../rows.ts";
import { lockKeys, type PostgresCore, type Tx } from "./core.ts";

/** How many messages left to other nodes one claim reads past at most (each stays locked until it commits). */
const LEFT_SCAN = 1000;

export function claimDue(c: PostgresCore, channel: Channel, limit: number, assign?: (m: StoredMessage) => string | null): Promise<StoredMessage[]> {
  return c.tx(async (tx, done) => {
    const now = c.now();
    const claimed: StoredMessage[] = [];
    // Every claim's statements pipelined together: one round trip for the batch, not one per message.
    const applied: Promise<unknown>[] = [];
    // Messages left to the node holding their carrier's binds are read past (up to LEFT_SCAN of them): a
    // backlog of theirs, older, must not hide this node's due work behind it.
    const left: string[] = [];
    for (let taken = 0; taken < limit && left.length < LEFT_SCAN; ) {
      const want = limit - taken;
      const rows = await tx`SELECT * FROM messages WHERE state = 'accepted' AND channel = ${channel} AND due_at IS NOT NULL AND due_at <= ${now}
        AND id <> ALL(${left}::text[]) ORDER BY due_at LIMIT ${want} FOR UPDATE SKIP LOCKED`;
      for (const row of rows) {
        const m = toMessage(row);
        const t = decideClaim(m, now, row.last_error as string | null, assign);
        if (t === null) {
          left.push(m.id);
          continue;
        }
        taken++;
        if (t.to === "submitting") claimed.push(m);
        applied.push(c.apply(tx, m, t, done));
      }
      if (rows.length < want) break;
    }
    await Promise.all(applied);
    return claimed;
  });
}

export function nextDue(c: PostgresCore, state: "accepted" | "submitted", channel: Channel): Promise<number | null> {
  return c.read(async (sql) => {
    const [r] = await sql`SELECT MIN(due_at) AS t FROM messages WHERE state = ${state} AND channel = ${channel} AND due_at IS NOT NULL`;
    return (r?.t as number | null) ?? null;
  });
}

export function recordSubmit(
  c: PostgresCore,
  claimed: StoredMessage,
  carrier: string,
  result: SubmitResult,
  routing: { pin: boolean; elsewhere: boolean } = { pin: false, elsewhere: false },
): Promise<SubmitVerdict> {
  return c.tx(async (tx, done) => {
    const m = { ...claimed };
    const now = c.now();
    const t = decideAfterSubmit(m, carrier, result, c.opts, now, c.random, routing);
    const ids = result.kind === "ok" ? result.carrierMessageIds : [];
    // One round trip: the statements are pipelined, and the server runs them in this order. The ids are
    // written under their locks, and held receipts are read after them: a receipt committed before the
    // locks is found here, one arriving after waits for this COMMIT and then finds the ids.
    const written = ids.length === 0 ? [] : [lockKeys(tx, carrier, ids).execute(), insertCarrierIds(tx, carrier, m.id, ids).execute()];
    const applied = c.apply(tx, m, t, done);
    const early =
      ids.length === 0
        ? Promise.resolve([])
        : tx`SELECT carrier_id, receipt, received_at FROM early_receipts WHERE carrier = ${carrier} AND carrier_id = ANY(${ids}::text[]) ORDER BY seq`.execute();
    const [taken] = await Promise.all([early, applied, ...written]);
    if (result.kind !== "ok") return submitVerdict(t);
    // Receipts that beat the submit answer (on any node, or naming it in another base) were held: each
    // once, though it may wait under several of these ids.
    const seen = new Set<string>();
    for (const cid of ids) {
      for (const held of taken.filter((x) => x.carrier_id === cid && !seen.has(x.receipt as string))) {
        seen.add(held.receipt as string);
        const r = JSON.parse(held.receipt as string) as CarrierReceipt;
        await tx`DELETE FROM early_receipts WHERE carrier = ${carrier} AND carrier_id = ANY(${heldKeys(cid, r)}::text[]) AND receipt = ${held.receipt as string}`;
        await c.applyReceiptIn(tx, r, held.received_at as number, done);
      }
    }
    if (seen.size === 0) return { fallback: false, final: null };
    const [row] = await tx`SELECT state FROM messages WHERE id = ${m.id}`;
    return verdictAfterHeldReceipts(row!.state as MessageState);
  });
}

/** A submit's carrier ids, one per part (an id named twice keeps its last part); a reused id is this message's now. */
function insertCarrierIds(tx: Tx, carrier: string, messageId: string, ids: string[]) {
  const parts = new Map(ids.map((cid, part) => [cid, part]));
  return tx`INSERT INTO carrier_ids (carrier, carrier_id, message_id, part, outcome)
    SELECT ${carrier}, cid, ${messageId}, part, NULL FROM unnest(${[...parts.keys()]}::text[], ${[...parts.values()]}::int[]) AS t(cid, part)
    ON CONFLICT (carrier, carrier_id) DO UPDATE SET message_id = EXCLUDED.message_id, part = EXCLUDED.part, outcome = NULL`;
}

/** At start: this node's own claims from before a restart, and any other node's expired ones. */
export function recoverInFlight(c: PostgresCore): Promise<number> {
  return c.tx(async (tx, done) => {
    const rows = await tx`SELECT * FROM messages WHERE state = 'submitting' AND (lease_node = ${c.node} OR lease_until < ${c.now()}) FOR UPDATE SKIP LOCKED`;
    return c.recoverClaims(tx, rows, done);
  });
}

export function openCarrierIds(c: PostgresCore, carrier: string): Promise<{ carrierMessageId: string; to: string }[]> {
  return c.read(async (sql) => {
    const rows = await sql`SELECT c.carrier_id AS id, m.payload AS payload FROM carrier_ids c JOIN messages m ON m.id = c.message_id
      WHERE c.carrier = ${carrier} AND c.outcome IS NULL AND m.state = 'submitted'`;
    return rows.map((r) => ({ carrierMessageId: r.id as string, to: (JSON.parse(r.payload as string) as MessagePayload).to }));
  });
}

export function expireReceiptWindows(c: PostgresCore, limit: number): Promise<number> {
  return c.tx(async (tx, done) => {
    const now = c.now();
    const rows = await tx`SELECT * FROM messages WHERE state = 'submitted' AND due_at IS NOT NULL AND due_at <= ${now} ORDER BY due_at LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
    await Promise.all(
      rows.map((row) => {
        const m = toMessage(row);
        return c.apply(tx, m, decideReceiptWindowEnd(m, now), done);
      }),
    );
    return rows.length;
  });
}
