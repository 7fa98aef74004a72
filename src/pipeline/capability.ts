// Capability memory: a number the carrier refused as "cannot take MMS" goes straight to its SMS
// fallback for `remember_days`, instead of being offered an MMS it cannot take every time.
import type { GatewayError } from "../domain/outcome.ts";
import { normaliseNumber } from "../domain/number.ts";
import type { StoredMessage } from "../domain/message.ts";
import type { CapabilityEntry, MediaStore } from "../store/media-store.ts";

export const rememberedCode = "capability:no_mms";

/** Causes that are about our content or this memory itself, not the handset: never remembered. */
const notTheHandset = /^(media|capability|gateway|mm7:size):?/;

export class CapabilityMemory {
  constructor(
    private readonly store: MediaStore,
    private readonly rememberMs: number,
    private readonly onHit: () => void,
  ) {}

  get enabled(): boolean {
    return this.rememberMs > 0;
  }

  /** The reason to skip MMS for this recipient, or null; counts a hit. */
  check(to: string): CapabilityEntry | null {
    if (!this.enabled) return null;
    const number = normaliseNumber(to);
    const entry = this.store.remembered(number);
    if (!entry) return null;
    this.onHit();
    this.store.countHit(number);
    return entry;
  }

  /** Runs inside the transaction that sends the message to its fallback. */
  onFallback(m: StoredMessage, cause: GatewayError, now: number): void {
    if (!this.enabled || notTheHandset.test(cause.code)) return;
    this.store.rememberNoMmsInWrite(normaliseNumber(m.payload.to), `${cause.code}: ${cause.message}`, now + this.rememberMs);
  }

  list(): CapabilityEntry[] {
    return this.store.listCapability();
  }

  forget(number: string): Promise<boolean> {
    return this.store.forgetCapability(normaliseNumber(number));
  }
}
