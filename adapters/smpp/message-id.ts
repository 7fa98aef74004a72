// Carrier message ids as match keys. SMSCs disagree with themselves: the submit_sm_resp id may be
// hex while the receipt says the same number in decimal, with or without leading zeros, in either
// case. The pipeline matches strings exactly, so both sides are turned into canonical keys here,
// under the carrier's `receipt_id_base` policy:
//
//   learn                 (default) the answer's id in its plain form; the receipt carries every
//                         reading of its id (`idReadings`) and the pipeline learns which one holds
//   same                  upper-case, leading zeros stripped, on both sides (Jasmin base 0)
//   resp_hex_receipt_dec  canonical = hex: the receipt's decimal id is converted to hex
//   resp_dec_receipt_hex  canonical = decimal: the receipt's hex id is converted to decimal
//   auto                  canonical = decimal: any id made of hex digits with at least one letter
//                         is read as hex, an all-digit id as decimal (Kannel's auto-detection; it
//                         cannot tell a hex id that happens to have no letters, so prefer a fixed base)
//
// An id that is not a number in the expected base (UUIDs, ids with '-') falls back to the "same"
// form, so ids that never had a base problem still meet. BigInt, because 64-bit ids overflow doubles.

import type { IdReading } from "../carrier.ts";
import type { ReceiptIdBase } from "./settings.ts";

const DECIMAL = /^[0-9]+$/;
const HEX = /^[0-9a-fA-F]+$/;
const MAX_NUMERIC_ID = 40;

/** Upper-case, leading zeros stripped ("0" stays "0"). */
export function plainKey(id: string): string {
  const trimmed = id.trim().toUpperCase();
  const stripped = trimmed.replace(/^0+/, "");
  return stripped === "" && trimmed !== "" ? "0" : stripped;
}

function hexToDecimal(id: string): string {
  return BigInt("0x" + id).toString(10);
}

function decimalToHex(id: string): string {
  return BigInt(id).toString(16).toUpperCase();
}

/** The key for an id taken from a submit_sm_resp. */
export function respKey(id: string, base: ReceiptIdBase): string {
  const t = id.trim();
  switch (base) {
    case "learn":
    case "same":
    case "resp_hex_receipt_dec":
      return plainKey(t);
    case "resp_dec_receipt_hex":
      return DECIMAL.test(t) ? BigInt(t).toString(10) : plainKey(t);
    case "auto":
      return autoKey(t);
  }
}

/** The key for an id taken from a delivery receipt (TLV or text). */
export function receiptKey(id: string, base: ReceiptIdBase): string {
  const t = id.trim();
  switch (base) {
    case "learn":
    case "same":
      return plainKey(t);
    case "resp_hex_receipt_dec":
      return DECIMAL.test(t) ? decimalToHex(t) : plainKey(t);
    case "resp_dec_receipt_hex":
      return HEX.test(t) ? hexToDecimal(t) : plainKey(t);
    case "auto":
      return autoKey(t);
  }
}

function autoKey(t: string): string {
  if (DECIMAL.test(t)) return BigInt(t).toString(10);
  if (HEX.test(t)) return hexToDecimal(t);
  return plainKey(t);
}

/**
 * Every key a receipt's id could stand for, each with the id base that makes it so: as written,
 * read as decimal and written in hex (the answer was hex), read as hex and written in decimal (the
 * answer was decimal). The plain reading comes first and equals receiptKey(id, "learn").
 */
export function idReadings(id: string): IdReading[] {
  const t = id.trim();
  const out: IdReading[] = [{ key: plainKey(t), base: "same" }];
  // Real ids fit 64 bits (20 digits); a longer "number" is no id to convert, and costly to.
  if (t.length > MAX_NUMERIC_ID) return out;
  if (DECIMAL.test(t)) out.push({ key: decimalToHex(t), base: "resp_hex_receipt_dec" });
  if (HEX.test(t)) out.push({ key: hexToDecimal(t), base: "resp_dec_receipt_hex" });
  // "0" or "7" read the same in both bases: one key, under the plain reading.
  return out.filter((r, i) => out.findIndex((o) => o.key === r.key) === i);
}
