// Delivery receipts inside deliver_sm: detection, TLVs first (receipted_message_id, message_state,
// network_error_code), then the Appendix B text parsed tolerantly, since every SMSC varies it.

import type { CarrierReceipt } from "../carrier.ts";
import { findTlv, Tag, type ShortMessageFields } from "./pdu.ts";

/** esm_class message-type bits 5-2: 0x04 SMSC receipt, 0x08/0x10 SME acks, 0x20 intermediate. */
const ESM_TYPE_MASK = 0x3c;

/** Masked, not compared: some SMSCs send 0x44 (receipt + UDHI). A receipted_message_id TLV also counts. */
export function isReceipt(sm: ShortMessageFields): boolean {
  return (sm.esmClass & ESM_TYPE_MASK) !== 0 || findTlv(sm.tlvs, Tag.receipted_message_id) !== undefined;
}

export type ReceiptOutcome = CarrierReceipt["outcome"];

/** message_state TLV values (3.4 §5.3.2.35, 5.0 adds 0 and 9). */
const STATE_BY_NUMBER: ReadonlyMap<number, { stat: string; outcome: ReceiptOutcome }> = new Map([
  [0, { stat: "SCHEDULED", outcome: "pending" }],
  [1, { stat: "ENROUTE", outcome: "pending" }],
  [2, { stat: "DELIVRD", outcome: "delivered" }],
  [3, { stat: "EXPIRED", outcome: "failed" }],
  [4, { stat: "DELETED", outcome: "failed" }],
  [5, { stat: "UNDELIV", outcome: "failed" }],
  // The spec calls ACCEPTED final, but carriers use it for "accepted, still trying" (Kannel: buffered).
  [6, { stat: "ACCEPTD", outcome: "pending" }],
  [7, { stat: "UNKNOWN", outcome: "unknown" }],
  [8, { stat: "REJECTD", outcome: "failed" }],
  [9, { stat: "SKIPPED", outcome: "failed" }],
]);

/** stat words, including the spellings Kannel's text fallback accepts. */
const OUTCOME_BY_STAT: ReadonlyMap<string, ReceiptOutcome> = new Map([
  ["DELIVRD", "delivered"],
  ["DELIVERED", "delivered"],
  ["UNDELIV", "failed"],
  ["UNDELIVERABLE", "failed"],
  ["EXPIRED", "failed"],
  ["REJECTD", "failed"],
  ["REJECTED", "failed"],
  ["DELETED", "failed"],
  ["SKIPPED", "failed"],
  ["UNKNOWN", "unknown"],
  ["ENROUTE", "pending"],
  ["ACCEPTD", "pending"],
  ["ACCEPTED", "pending"],
  ["ACKED", "pending"],
  ["BUFFRED", "pending"],
  ["BUFFERD", "pending"],
  ["SCHEDULED", "pending"],
]);

/** What one receipt says, before its id is turned into a match key. */
export interface ParsedReceipt {
  /** The id as the SMSC wrote it; undefined when neither TLV nor text had one. */
  id: string | undefined;
  /** The stat word (upper-case), from the text or derived from message_state. */
  stat: string | undefined;
  outcome: ReceiptOutcome;
  err: string | undefined;
  /** network_error_code TLV as "type:code", e.g. "3:1" (GSM, 1). */
  networkError: string | undefined;
  /** Unix ms of "done date", when present and well formed. */
  doneAt: number | undefined;
}

/**
 * Keys of the Appendix B text, not preceded by a letter or digit ("msgid:" is not "id:"); longer
 * alternatives first so "submit date" is not read as "sub". The value may be empty ("sub: dlvrd:1").
 */
const TEXT_KEY = /(?<![A-Za-z0-9])(submit[ _]?date|done[ _]?date|dlvrd|stat|sub|err|text|id)\s*:\s*/gi;

/** Splits the text into key → value; "text" swallows the rest, since it is the message's start. */
export function parseReceiptText(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  const hits: { key: string; valueStart: number; keyStart: number }[] = [];
  TEXT_KEY.lastIndex = 0;
  for (let m = TEXT_KEY.exec(text); m; m = TEXT_KEY.exec(text)) {
    const key = m[1]!.toLowerCase().replace(/[ _]/g, "");
    hits.push({ key, keyStart: m.index, valueStart: m.index + m[0].length });
    if (key === "text") break;
  }
  for (let i = 0; i < hits.length; i++) {
    const h = hits[i]!;
    const end = i + 1 < hits.length ? hits[i + 1]!.keyStart : text.length;
    const raw = text.slice(h.valueStart, end);
    // Dates and text may hold spaces; every other value is one token.
    const value = h.key === "text" || h.key.endsWith("date") ? raw.trim() : (raw.trim().split(/\s+/)[0] ?? "");
    if (!fields.has(h.key)) fields.set(h.key, value);
  }
  return fields;
}

/** YYMMDDhhmm or YYMMDDhhmmss, read as UTC (the SMSC's zone is not on the wire). */
export function parseReceiptDate(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const digits = value.replace(/\s+/g, "");
  const m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?$/.exec(digits);
  if (!m) return undefined;
  const [, yy, mo, dd, hh, mi, ss] = m;
  const month = Number(mo);
  const day = Number(dd);
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(hh) > 23 || Number(mi) > 59 || Number(ss ?? 0) > 59) return undefined;
  return Date.UTC(2000 + Number(yy), month - 1, day, Number(hh), Number(mi), Number(ss ?? 0));
}

function cstringValue(v: Uint8Array): string {
  const nul = v.indexOf(0);
  return Buffer.from(v.subarray(0, nul < 0 ? v.length : nul)).toString("latin1").trim();
}

/**
 * Reads a receipt. The text is decoded as Latin-1, never GSM: it is ASCII in practice, and a GSM
 * decode would turn '_' in ids into '§'. TLV values win over the text, field by field.
 */
export function parseReceipt(sm: ShortMessageFields): ParsedReceipt {
  const body = findTlv(sm.tlvs, Tag.message_payload) ?? sm.shortMessage;
  const fields = parseReceiptText(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1"));

  const tlvId = findTlv(sm.tlvs, Tag.receipted_message_id);
  const id = (tlvId && cstringValue(tlvId)) || fields.get("id") || undefined;

  const stateTlv = findTlv(sm.tlvs, Tag.message_state);
  const byState = stateTlv && stateTlv.length >= 1 ? STATE_BY_NUMBER.get(stateTlv[0]!) : undefined;
  const textStat = fields.get("stat")?.toUpperCase() || undefined;
  let stat: string | undefined;
  let outcome: ReceiptOutcome;
  if (byState) {
    stat = byState.stat;
    outcome = byState.outcome;
  } else if (textStat) {
    stat = textStat;
    // An unrecognised word is a failure, as in Kannel: a final state we cannot read is not a success.
    outcome = OUTCOME_BY_STAT.get(textStat) ?? "failed";
  } else {
    stat = undefined;
    outcome = "unknown";
  }

  const nec = findTlv(sm.tlvs, Tag.network_error_code);
  const networkError = nec && nec.length >= 3 ? `${nec[0]}:${(nec[1]! << 8) | nec[2]!}` : undefined;

  return {
    id,
    stat,
    outcome,
    err: fields.get("err") || undefined,
    networkError,
    doneAt: parseReceiptDate(fields.get("donedate")),
  };
}
