// Text ↔ octets for SMS: GSM 03.38 (unpacked, one septet per octet, as SMPP carries it with
// data_coding 0x00) with its extension table, UCS2 (UTF-16BE, data_coding 0x08), and the split of a
// long text into parts that never cut an escape pair or a surrogate pair.

/** The 128 characters of the GSM 03.38 default alphabet, indexed by septet value (0x1B is ESC). */
const GSM_BASIC =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/** Extension table: reached by ESC (0x1B) + this septet, so each costs 2 septets. */
const GSM_EXTENSION: ReadonlyArray<readonly [string, number]> = [
  ["\f", 0x0a],
  ["^", 0x14],
  ["{", 0x28],
  ["}", 0x29],
  ["\\", 0x2f],
  ["[", 0x3c],
  ["~", 0x3d],
  ["]", 0x3e],
  ["|", 0x40],
  ["€", 0x65],
];

const ESC = 0x1b;
const basicByChar = new Map<string, number>();
for (let i = 0; i < GSM_BASIC.length; i++) if (i !== ESC) basicByChar.set(GSM_BASIC[i]!, i);
const extensionByChar = new Map<string, number>(GSM_EXTENSION);
const charByExtension = new Map<number, string>(GSM_EXTENSION.map(([c, v]) => [v, c]));

export const DATA_CODING_GSM = 0x00;
export const DATA_CODING_UCS2 = 0x08;

/** True when every character is in the GSM basic or extension table. */
export function fitsGsm(text: string): boolean {
  for (const ch of text) if (!basicByChar.has(ch) && !extensionByChar.has(ch)) return false;
  return true;
}

/** Septets one character costs in GSM, or 0 when it is not representable. */
function gsmWeight(ch: string): number {
  if (basicByChar.has(ch)) return 1;
  return extensionByChar.has(ch) ? 2 : 0;
}

export function encodeGsm(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const basic = basicByChar.get(ch);
    if (basic !== undefined) out.push(basic);
    else {
      const ext = extensionByChar.get(ch);
      if (ext === undefined) throw new RangeError(`not a GSM 03.38 character: U+${ch.codePointAt(0)!.toString(16)}`);
      out.push(ESC, ext);
    }
  }
  return Uint8Array.from(out);
}

/**
 * Unpacked GSM septets to text. Octets above 0x7F (not GSM) are taken as Latin-1 rather than lost,
 * since SMSCs that say "default alphabet" sometimes mean Latin-1. An unknown escape gives a space
 * (the 03.38 rule is "display the basic character", but a lone ESC at the end has none).
 */
export function decodeGsm(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === ESC) {
      const next = bytes[i + 1];
      if (next === undefined) break;
      i++;
      out += charByExtension.get(next) ?? (next < 0x80 ? GSM_BASIC[next] : String.fromCharCode(next));
      continue;
    }
    out += b < 0x80 ? GSM_BASIC[b] : String.fromCharCode(b);
  }
  return out;
}

export function encodeUcs2(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    out[2 * i] = u >> 8;
    out[2 * i + 1] = u & 0xff;
  }
  return out;
}

/** UTF-16BE to text; an odd trailing octet (a broken sender) is dropped. */
export function decodeUcs2(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i + 1 < bytes.length; i += 2) out += String.fromCharCode((bytes[i]! << 8) | bytes[i + 1]!);
  return out;
}

/** How many septets (GSM) or UTF-16 units (UCS2) fit in one SMS, alone or as a part. */
export interface SegmentCapacity {
  single: number;
  part: number;
}

/**
 * 140 octets of user data. With a UDH the header eats 6 octets (8-bit reference; 7 septets with the
 * fill bits) or 7 (16-bit reference; 8 septets). SAR carries the reference in TLVs but the SMSC
 * builds a UDH itself, possibly a 16-bit one since sar_msg_ref_num is 16 bits, so we leave room for it.
 */
export function capacityFor(
  dataCoding: number,
  concatenation: "udh8" | "udh16" | "sar" | "payload",
): SegmentCapacity {
  const ucs2 = dataCoding === DATA_CODING_UCS2;
  if (concatenation === "udh16" || concatenation === "sar") return ucs2 ? { single: 70, part: 66 } : { single: 160, part: 152 };
  return ucs2 ? { single: 70, part: 67 } : { single: 160, part: 153 };
}

/** A text ready for the wire: its data_coding and the octets of each part (no UDH). */
export interface EncodedText {
  dataCoding: number;
  /** The whole text as octets, for message_payload. */
  whole: Uint8Array;
  parts: Uint8Array[];
}

/**
 * Chooses GSM when every character fits (extension characters included), else UCS2, and cuts the
 * text into parts of at most `capacity.part` units. An escape pair or a surrogate pair is moved to
 * the next part whole rather than split, because handsets render half of one as garbage.
 */
export function encodeText(text: string, capacity: (dataCoding: number) => SegmentCapacity): EncodedText {
  if (fitsGsm(text)) {
    const cap = capacity(DATA_CODING_GSM);
    const whole = encodeGsm(text);
    if (whole.length <= cap.single) return { dataCoding: DATA_CODING_GSM, whole, parts: [whole] };
    const parts: Uint8Array[] = [];
    let start = 0;
    let used = 0;
    let offset = 0;
    for (const ch of text) {
      const w = gsmWeight(ch);
      if (used + w > cap.part) {
        parts.push(whole.subarray(start, offset));
        start = offset;
        used = 0;
      }
      used += w;
      offset += w;
    }
    parts.push(whole.subarray(start, offset));
    return { dataCoding: DATA_CODING_GSM, whole, parts };
  }
  const cap = capacity(DATA_CODING_UCS2);
  const whole = encodeUcs2(text);
  if (text.length <= cap.single) return { dataCoding: DATA_CODING_UCS2, whole, parts: [whole] };
  const parts: Uint8Array[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + cap.part, text.length);
    const last = text.charCodeAt(end - 1);
    // Ends on a high surrogate: its low half would open the next part, so stop one unit earlier.
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    parts.push(whole.subarray(start * 2, end * 2));
    start = end;
  }
  return { dataCoding: DATA_CODING_UCS2, whole, parts };
}

/** Number of parts `text` would take, without building them (for limits and rate accounting). */
export function countParts(text: string, capacity: (dataCoding: number) => SegmentCapacity): number {
  return encodeText(text, capacity).parts.length;
}
