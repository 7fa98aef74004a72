// Capability memory: a number the carrier refused as "cannot take MMS" goes straight to its SMS
// fallback for `remember_days`, instead of being offered an MMS it cannot take every time. What is
// remembered is decided with the fallback (domain/decisions.ts) and written in its transaction.
import { normaliseNumber } from "../domain/number.ts";
import type { CapabilityEntry, Store } from "../store/index.ts";

export class CapabilityMemory {
  constructor(
    private readonly store: Pick<Store, "noMmsMemory" | "listNoMms" | "forgetNoMms">,
    private readonly rememberMs: number,
    private readonly onHit: () => void,
  ) {}

  get enabled(): boolean {
    return this.rememberMs > 0;
  }

  /** The reason to skip MMS for this recipient, or null; counts a hit. */
  async check(to: string): Promise<CapabilityEntry | null> {
    if (!this.enabled) return null;
    const entry = await this.store.noMmsMemory(normaliseNumber(to));
    if (entry) this.onHit();
    return entry;
  }

  list(): Promise<CapabilityEntry[]> {
    return this.store.listNoMms();
  }

  forget(number: string): Promise<boolean> {
    return this.store.forgetNoMms(normaliseNumber(number));
  }
}
