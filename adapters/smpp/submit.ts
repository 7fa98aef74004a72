// An SmsSubmit turned into the submit_sm PDUs that carry it: addresses with their TON/NPI, the
// text encoded and cut into parts, and the concatenation the carrier wants (UDH, SAR or payload).

import type { SmsSubmit } from "../carrier.ts";
import { capacityFor, encodeText } from "./gsm.ts";
import { Tag, u16Tlv, u8Tlv, type ShortMessageFields, type Tlv } from "./pdu.ts";
import type { SmppSettings } from "./settings.ts";

const UDHI = 0x40;

export type SubmitPlan =
  | { kind: "parts"; parts: ShortMessageFields[] }
  /** Refused before sending: the message can never go out as it is. */
  | { kind: "refused"; code: string; message: string };

export interface Address {
  ton: number;
  npi: number;
  addr: string;
}

/** Printable ASCII: what SMSCs accept in an alphanumeric sender (GSM TP-OA takes at most 11). */
const ALPHANUMERIC_SENDER = /^[\x20-\x7e]{1,11}$/;

/**
 * The sender's TON/NPI from its shape (research 1.2): digits (with an optional '+') of at most
 * short_code_max_digits are a short code (3/0), longer ones an international number (1/1, no '+'),
 * anything else an alphanumeric sender (5/0). Values come from settings, so a carrier can differ.
 */
export function sourceAddress(from: string, s: SmppSettings): Address | undefined {
  const t = from.trim();
  if (/^\+?[0-9]+$/.test(t)) {
    const digits = t.replace(/^\+/, "");
    if (digits.length > 20) return undefined;
    return digits.length <= s.short_code_max_digits
      ? { ton: s.source_short_code_ton, npi: s.source_short_code_npi, addr: digits }
      : { ton: s.source_numeric_ton, npi: s.source_numeric_npi, addr: digits };
  }
  if (!ALPHANUMERIC_SENDER.test(t)) return undefined;
  return { ton: s.source_alpha_ton, npi: s.source_alpha_npi, addr: t };
}

/** E.164 without the '+' (TON 1 / NPI 1 by default); anything but digits is refused. */
export function destinationAddress(to: string, s: SmppSettings): Address | undefined {
  const digits = to.trim().replace(/^\+/, "");
  if (!/^[0-9]{1,20}$/.test(digits)) return undefined;
  return { ton: s.dest_ton, npi: s.dest_npi, addr: digits };
}

/**
 * Builds the parts. `ref` is the concatenation reference for this message (the caller keeps a
 * counter per carrier); UDH8 uses its low 8 bits. Every part asks for a receipt: carriers bill
 * per part and some only ever report part 1, so asking only on the last (Jasmin) loses reports.
 */
export function planSubmit(m: SmsSubmit, s: SmppSettings, ref: number): SubmitPlan {
  const source = sourceAddress(m.from, s);
  if (!source) return { kind: "refused", code: "smpp:bad-source", message: `sender "${m.from}" is neither a number nor a 1-11 character ASCII name` };
  const dest = destinationAddress(m.to, s);
  if (!dest) return { kind: "refused", code: "smpp:bad-destination", message: `recipient "${m.to}" is not an international number` };

  // message_payload lets the SMSC cut the text; the part count (for max_parts) is what it will bill.
  const cutAs = s.concatenation === "payload" ? "udh8" : s.concatenation;
  const text = encodeText(m.text, (dc) => capacityFor(dc, cutAs));
  const total = text.parts.length;
  if (total > s.max_parts) {
    return { kind: "refused", code: "smpp:too-long", message: `text needs ${total} parts, more than max_parts ${s.max_parts}` };
  }

  const base = (shortMessage: Uint8Array, esmClass: number, tlvs: Tlv[]): ShortMessageFields => ({
    serviceType: s.service_type,
    sourceTon: source.ton,
    sourceNpi: source.npi,
    sourceAddr: source.addr,
    destTon: dest.ton,
    destNpi: dest.npi,
    destAddr: dest.addr,
    esmClass,
    protocolId: 0,
    priorityFlag: 0,
    scheduleDeliveryTime: "",
    validityPeriod: s.validity,
    registeredDelivery: s.registered_delivery,
    replaceIfPresent: 0,
    // Always explicit: never leave the alphabet to an SMSC default or a library's guess.
    dataCoding: text.dataCoding,
    smDefaultMsgId: 0,
    shortMessage,
    tlvs,
  });

  if (total === 1) return { kind: "parts", parts: [base(text.parts[0]!, 0, [])] };

  switch (s.concatenation) {
    case "payload":
      return { kind: "parts", parts: [base(new Uint8Array(0), 0, [{ tag: Tag.message_payload, value: text.whole }])] };
    case "sar":
      return {
        kind: "parts",
        parts: text.parts.map((p, i) =>
          base(p, 0, [u16Tlv(Tag.sar_msg_ref_num, ref & 0xffff), u8Tlv(Tag.sar_total_segments, total), u8Tlv(Tag.sar_segment_seqnum, i + 1)]),
        ),
      };
    case "udh8":
    case "udh16": {
      const udh = (i: number): number[] =>
        s.concatenation === "udh8"
          ? [0x05, 0x00, 0x03, ref & 0xff, total, i + 1]
          : [0x06, 0x08, 0x04, (ref >> 8) & 0xff, ref & 0xff, total, i + 1];
      return {
        kind: "parts",
        parts: text.parts.map((p, i) => {
          const h = udh(i);
          const sm = new Uint8Array(h.length + p.length);
          sm.set(h, 0);
          sm.set(p, h.length);
          return base(sm, UDHI, []);
        }),
      };
    }
  }
}
