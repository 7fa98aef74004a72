// Mobile-originated SMS: the text of a deliver_sm by its data_coding, and the reassembly of
// concatenated MO (UDH with 8- or 16-bit reference, or sar_* TLVs) in a bounded, timed buffer.

import { decodeGsm, decodeUcs2 } from "./gsm.ts";
import { findTlv, Tag, type ShortMessageFields } from "./pdu.ts";

const UDHI = 0x40;

/** Where one part sits in its concatenated message. */
export interface Concat {
  ref: number;
  total: number;
  seq: number;
}

/** The user data of one deliver_sm: its concatenation info (if any) and its text octets (UDH removed). */
export interface MoPart {
  concat: Concat | undefined;
  payload: Uint8Array;
}

/** Splits the UDH off when esm_class says there is one; a UDH that overruns the data is ignored. */
export function splitUserData(sm: ShortMessageFields): MoPart {
  const data = findTlv(sm.tlvs, Tag.message_payload) ?? sm.shortMessage;
  let concat: Concat | undefined;
  let payload = data;
  if (sm.esmClass & UDHI && data.length > 0) {
    const udhl = data[0]!;
    if (1 + udhl <= data.length) {
      payload = data.subarray(1 + udhl);
      concat = concatFromUdh(data.subarray(1, 1 + udhl));
    }
  }
  const sarRef = findTlv(sm.tlvs, Tag.sar_msg_ref_num);
  const sarTotal = findTlv(sm.tlvs, Tag.sar_total_segments);
  const sarSeq = findTlv(sm.tlvs, Tag.sar_segment_seqnum);
  if (!concat && sarRef && sarTotal?.length && sarSeq?.length) {
    const ref = sarRef.length >= 2 ? (sarRef[0]! << 8) | sarRef[1]! : (sarRef[0] ?? 0);
    concat = { ref, total: sarTotal[0]!, seq: sarSeq[0]! };
  }
  if (concat && (concat.total < 2 || concat.seq < 1 || concat.seq > concat.total)) concat = undefined;
  return { concat, payload };
}

/** Information elements: 0x00 = 8-bit reference (3 octets), 0x08 = 16-bit reference (4 octets). */
function concatFromUdh(udh: Uint8Array): Concat | undefined {
  let i = 0;
  while (i + 2 <= udh.length) {
    const iei = udh[i]!;
    const len = udh[i + 1]!;
    const v = udh.subarray(i + 2, i + 2 + len);
    if (v.length < len) return undefined;
    if (iei === 0x00 && len === 3) return { ref: v[0]!, total: v[1]!, seq: v[2]! };
    if (iei === 0x08 && len === 4) return { ref: (v[0]! << 8) | v[1]!, total: v[2]!, seq: v[3]! };
    i += 2 + len;
  }
  return undefined;
}

/**
 * Text by data_coding (3.4 §5.2.19). 0x00 is the SMSC default alphabet, taken as GSM 03.38
 * unpacked; the 0xF0 group's bit 2 says 8-bit data, else GSM. Anything we cannot name is decoded
 * as Latin-1, which at least never loses an octet.
 */
export function decodeText(dataCoding: number, bytes: Uint8Array): string {
  if ((dataCoding & 0xf0) === 0xf0) return dataCoding & 0x04 ? latin1(bytes) : decodeGsm(bytes);
  // Coding groups 0x0X-0x3X (general data coding, 3GPP 23.038): bits 3-2 give the alphabet.
  if ((dataCoding & 0xc0) === 0x00 && dataCoding >= 0x10) {
    const alphabet = (dataCoding >> 2) & 0x03;
    return alphabet === 2 ? decodeUcs2(bytes) : alphabet === 0 ? decodeGsm(bytes) : latin1(bytes);
  }
  switch (dataCoding) {
    case 0x00:
      return decodeGsm(bytes);
    case 0x08:
      return decodeUcs2(bytes);
    default:
      return latin1(bytes);
  }
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

interface Pending {
  key: string;
  parts: (Uint8Array | undefined)[];
  received: number;
  /** Octets held for this message. */
  bytes: number;
  /** Complete and with the pipeline now: the bounds and the timeout pass it over, or it would arrive twice. */
  handedOn: boolean;
  dataCoding: number;
  firstAt: number;
}

/** Why a message left the buffer before the pipeline had it whole. */
export type GiveUpReason = "expired" | "full";

export interface ReassemblyLimits {
  /** How long the parts of a message wait for the rest. */
  timeoutMs: number;
  /** Messages held at once. */
  maxMessages: number;
  /** Octets held at once over all messages (parts arrive up to 64 KiB each in message_payload). */
  maxBytes: number;
}

/** A message put back together, or what was left of one when its time ran out. */
export interface Reassembled {
  key: string;
  dataCoding: number;
  text: string;
  complete: boolean;
}

/**
 * Holds parts until their message is complete, bounded in messages, in octets and in time: a flood
 * of first parts that never complete (a broken or hostile sender) cannot grow memory. Parts are
 * concatenated as octets before decoding, because a careless sender may cut a UCS2 surrogate pair
 * or GSM escape across parts. A completed message stays until `release` so that a redelivered last
 * part (after we refused it) completes it again.
 */
export class MoReassembly {
  private readonly pending = new Map<string, Pending>();
  private heldBytes = 0;

  constructor(
    private readonly limits: ReassemblyLimits,
    private readonly now: () => number,
  ) {}

  /**
   * Adds a part. Returns the message when this part completes it; otherwise undefined. `evicted`
   * receives messages pushed out by the bounds, oldest first (or this very message alone, when its own
   * parts exceed the byte bound).
   */
  add(from: string, to: string, dataCoding: number, part: MoPart & { concat: Concat }, evicted: (r: Reassembled) => void): Reassembled | undefined {
    const { ref, total, seq } = part.concat;
    const key = `${from}\u0000${to}\u0000${ref}\u0000${total}`;
    let p = this.pending.get(key);
    if (!p) {
      for (let oldest = this.oldestIdle(); oldest && this.pending.size >= this.limits.maxMessages; oldest = this.oldestIdle()) evicted(this.remove(oldest));
      p = { key, parts: new Array(total).fill(undefined), received: 0, bytes: 0, handedOn: false, dataCoding, firstAt: this.now() };
      this.pending.set(key, p);
    }
    if (!p.parts[seq - 1]) {
      p.parts[seq - 1] = part.payload.slice();
      p.received++;
      p.bytes += part.payload.byteLength;
      this.heldBytes += part.payload.byteLength;
    }
    if (p.received === p.parts.length) {
      p.handedOn = true;
      return this.assemble(p);
    }
    // Alone over the bound, it goes by itself: pushing older messages out first would not make it fit.
    if (p.bytes > this.limits.maxBytes) {
      evicted(this.remove(p));
      return undefined;
    }
    // Map order is arrival order and this message came last: when it is the oldest, it alone is too big.
    for (let oldest = this.oldestIdle(); oldest && this.heldBytes > this.limits.maxBytes; oldest = oldest === p ? undefined : this.oldestIdle()) {
      evicted(this.remove(oldest));
    }
    return undefined;
  }

  /** Forgets a message once the pipeline has it. */
  release(key: string): void {
    const p = this.pending.get(key);
    if (p) this.remove(p);
  }

  /** The pipeline refused a completed message: keep it for the SMSC's redelivery of its last part. */
  refused(key: string): void {
    const p = this.pending.get(key);
    if (p) p.handedOn = false;
  }

  /** Removes and returns the messages that waited longer than the timeout, incomplete as they are. */
  expire(): Reassembled[] {
    const cutoff = this.now() - this.limits.timeoutMs;
    const out: Reassembled[] = [];
    for (const p of this.pending.values()) {
      if (p.firstAt > cutoff) break; // insertion order is arrival order
      if (!p.handedOn) out.push(this.remove(p));
    }
    return out;
  }

  get size(): number {
    return this.pending.size;
  }

  /** Octets held over all messages. */
  get bytes(): number {
    return this.heldBytes;
  }

  private oldestIdle(): Pending | undefined {
    for (const p of this.pending.values()) if (!p.handedOn) return p;
    return undefined;
  }

  private remove(p: Pending): Reassembled {
    this.pending.delete(p.key);
    this.heldBytes -= p.bytes;
    return this.assemble(p);
  }

  private assemble(p: Pending): Reassembled {
    const present = p.parts.filter((x): x is Uint8Array => x !== undefined);
    const bytes = Buffer.concat(present);
    return { key: p.key, dataCoding: p.dataCoding, text: decodeText(p.dataCoding, bytes), complete: present.length === p.parts.length };
  }
}
