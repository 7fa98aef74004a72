// Which submitted message a receipt is about, when its id may be read in more than one base. Pure:
// the store looks each reading up and applies what is decided here.
import type { IdBase, IdReading } from "../../adapters/carrier.ts";

/** Unambiguous matches through one reading (and none through another) before a carrier's base is learnt. */
export const LEARN_AFTER = 3;

/** A submitted part one reading of a receipt's id found. */
export interface ReceiptCandidate {
  key: string;
  base: IdBase;
  messageId: string;
  /** No receipt applied to this part yet. */
  open: boolean;
  /** The message's recipient. */
  to: string;
  /** The message's sender (some SMSCs write it in the receipt's source_addr instead of the handset). */
  from: string;
  /** Unix ms of the message's last change: its submit, while it waits for the receipt. */
  submittedAt: number;
}

export type ReceiptMatch =
  | { kind: "none" }
  | { kind: "ambiguous"; candidates: ReceiptCandidate[] }
  /** `evidence`: only one reading found anything, so the match tells which base the carrier uses. */
  | { kind: "match"; candidate: ReceiptCandidate; evidence: boolean };

/**
 * Picks the message among what the readings found: a part still waiting beats one already reported;
 * then the receipt's handset; then the message submitted nearest the receipt's arrival. Two equally
 * near stay ambiguous: guessing would report one message's fate on another.
 */
export function chooseCandidate(found: ReceiptCandidate[], receipt: { to?: string; arrivedAt: number }): ReceiptMatch {
  // A converted reading that found a message for another handset found a lookalike id: typically the
  // receipt beat its own submit answer (16 decimal is 10 hex, an older message still waiting). Held,
  // the receipt is applied when that answer is stored.
  const plausible = found.filter((c) => c.base === "same" || receipt.to === undefined || sameAddress(c.to, receipt.to) || sameAddress(c.from, receipt.to));
  const byMessage = plausible.filter((c, i) => plausible.findIndex((o) => o.messageId === c.messageId) === i);
  if (byMessage.length === 0) return { kind: "none" };
  if (byMessage.length === 1) return { kind: "match", candidate: byMessage[0]!, evidence: found.length === 1 };
  let pool = byMessage.some((c) => c.open) ? byMessage.filter((c) => c.open) : byMessage;
  const to = receipt.to;
  if (to !== undefined) {
    const same = pool.filter((c) => sameAddress(c.to, to));
    // An SMSC that writes something else in source_addr (the sender, a short code) narrows nothing.
    if (same.length > 0) pool = same;
  }
  if (pool.length === 1) return { kind: "match", candidate: pool[0]!, evidence: false };
  const distance = (c: ReceiptCandidate) => Math.abs(receipt.arrivedAt - c.submittedAt);
  const sorted = [...pool].sort((a, b) => distance(a) - distance(b));
  if (distance(sorted[0]!) === distance(sorted[1]!)) return { kind: "ambiguous", candidates: sorted };
  return { kind: "match", candidate: sorted[0]!, evidence: false };
}

/**
 * The same handset written two ways: digits compared without a leading "+" or zeros, and a national
 * form matches the international one it ends (07700900123 / 447700900123). Anything else, exactly.
 */
export function sameAddress(a: string, b: string): boolean {
  const digits = (s: string) => (/^\+?\d+$/.test(s.trim()) ? s.trim().replace(/^\+/, "").replace(/^0+/, "") : null);
  const x = digits(a);
  const y = digits(b);
  if (x === null || y === null) return a.trim().toUpperCase() === b.trim().toUpperCase();
  const [short, long] = x.length <= y.length ? [x, y] : [y, x];
  // Fewer digits than a subscriber number could end many numbers.
  return short === long || (short.length >= 7 && long.endsWith(short));
}

/**
 * What each carrier's receipts have shown about its id base, learnt from evidence-giving matches.
 * Kept in memory: after a restart the first receipts teach it again, trying every reading meanwhile.
 */
export class IdBaseLearning {
  private readonly seen = new Map<string, Map<IdBase, number>>();

  /** The base learnt for `carrier`: LEARN_AFTER matches through it and none through another. */
  learnt(carrier: string): IdBase | null {
    const counts = this.seen.get(carrier);
    if (!counts || counts.size !== 1) return null;
    const [base, n] = [...counts][0]!;
    return n >= LEARN_AFTER ? base : null;
  }

  record(carrier: string, base: IdBase): void {
    const counts = this.seen.get(carrier) ?? new Map<IdBase, number>();
    counts.set(base, (counts.get(base) ?? 0) + 1);
    this.seen.set(carrier, counts);
  }

  /**
   * The readings worth looking up: all of them until the base is learnt, then that one alone, or the
   * plain one for an id that is no number in that base (a UUID never had a base problem).
   */
  narrow(carrier: string, readings: IdReading[]): IdReading[] {
    const base = this.learnt(carrier);
    if (base === null) return readings;
    const inBase = readings.filter((r) => r.base === base);
    return inBase.length > 0 ? inBase : readings.filter((r) => r.base === "same");
  }
}

/** Every key a held receipt waits under (each base its id may be read in): taking it by one takes it by all. */
export function heldKeys(carrierId: string, r: { carrierMessageId: string; readings?: IdReading[] }): string[] {
  return [...new Set([carrierId, r.carrierMessageId, ...(r.readings ?? []).map((x) => x.key)])];
}
