// Row → value mappers that read the same columns in both engines (the drivers differ only in how they fetch).
import type { CapabilityEntry, MediaLink, PendingEvent, StoredResponse } from "./index.ts";
import type { IdReading } from "../../adapters/carrier.ts";
import type { ReceiptCandidate } from "../domain/receipt-match.ts";
import type { Channel, MessagePayload, MessageState, StoredMessage } from "../domain/message.ts";

type Row = Record<string, unknown>;

export function toLink(r: Row): MediaLink {
  return {
    token: r.token as string,
    messageId: r.message_id as string,
    subject: r.subject as string,
    text: r.text as string,
    media: JSON.parse(r.media as string),
    expiresAt: r.expires_at as number,
  };
}

export function toCapability(r: Row): CapabilityEntry {
  return { number: r.number as string, reason: r.reason as string, createdAt: r.created_at as number, until: r.until as number, hits: r.hits as number };
}

/** `fallback` is a boolean in PostgreSQL and 0/1 in SQLite. */
export function toMessage(r: Row): StoredMessage {
  return {
    id: r.id as string,
    accountId: r.account_id as string,
    requestId: r.request_id as string | null,
    channel: r.channel as Channel,
    fallback: r.fallback === true || r.fallback === 1,
    state: r.state as MessageState,
    attempts: r.attempts as number,
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    payload: JSON.parse(r.payload as string) as MessagePayload,
    carrier: (r.carrier as string | null) ?? null,
    pinned: (r.pinned_carrier as string | null) ?? null,
    refused: r.refused_carriers ? String(r.refused_carriers).split(",") : [],
    fallbackReason: (r.fallback_reason as string | null) ?? null,
  };
}

/** The stored answer of a request_id seen before (a dedup row); `bodyHash`: the copy's, to tell a changed body. */
export function toStoredResponse(row: Row, bodyHash: string): StoredResponse {
  return { status: row.status as number, body: row.response as string, replay: true, bodyDiffers: row.body_hash !== bodyHash, messageId: row.message_id as string | null };
}

/** One line of a message's history column (appended, newline-terminated JSON). */
export function historyLine(at: number, state: string, detail?: string): string {
  return `${JSON.stringify(detail ? { at, state, detail } : { at, state })}\n`;
}

/** What one reading of a receipt's id found: a carrier_ids row joined to its message (payload, updated_at; null if purged). */
export function toCandidate(reading: IdReading, link: Row): ReceiptCandidate {
  const { to, from } = link.payload === null ? { to: "", from: "" } : (JSON.parse(link.payload as string) as MessagePayload);
  return { ...reading, messageId: link.message_id as string, open: link.outcome === null, to, from, submittedAt: (link.updated_at as number | null) ?? 0 };
}

/**
 * Expired early_receipts rows, one per held receipt (it was held under each key its id may stand for),
 * named by the key it was held under first: by `seq`, since DELETE … RETURNING promises no order.
 */
export function oncePerReceipt(rows: readonly Row[]): { carrier: string; carrier_id: string }[] {
  // A Set, not findIndex: a flood of unmatched receipts can expire tens of thousands of rows at once.
  const seen = new Set<string>();
  return [...rows]
    .sort((a, b) => (a.seq as number) - (b.seq as number))
    .filter((r) => !seen.has(r.receipt as string) && seen.add(r.receipt as string))
    .map((r) => ({ carrier: r.carrier as string, carrier_id: r.carrier_id as string }));
}

export function toPendingEvent(r: Row): PendingEvent {
  return {
    seq: r.seq as number,
    eventId: r.event_id as string,
    messageId: r.message_id as string | null,
    accountId: r.account_id as string,
    url: r.url as string,
    body: r.body as string,
    attempts: r.attempts as number,
    createdAt: r.created_at as number,
  };
}

/** What `describe` shows of a message row in every engine (the driver adds carrier ids, events, lease). */
export function describeRow(row: Row): Record<string, unknown> {
  return {
    ...toMessage(row),
    carrier: row.carrier,
    lastError: row.last_error,
    dueAt: row.due_at,
    history: String(row.history)
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l)),
  };
}
