// The chores beside the three loops, once a second: receipt windows that ran out, early receipts whose
// carrier id never became known, and once a minute the purge of old records and media.
import type { Logger } from "pino";
import type { Store } from "../store/index.ts";

const EVERY_MS = 1000;
const PURGE_EVERY_MS = 60_000;

export interface HousekeepingDeps {
  store: Store;
  log: Logger;
  now: () => number;
  settings: { earlyReceiptHoldMs: number; dedupWindowMs: number; retentionMs: number };
  /** Expired receipt windows wrote events: the outbox has work. */
  onEvents: () => void;
  purgeMedia: () => Promise<{ links: number; capability: number; adapted: number }>;
}

export class Housekeeping {
  private timer: ReturnType<typeof setInterval> | null = null;
  private running = false;
  private lastPurge = 0;

  constructor(private readonly d: HousekeepingDeps) {}

  start(): void {
    this.timer ??= setInterval(() => void this.pass(), EVERY_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async pass(): Promise<void> {
    // A pass that takes longer than the interval (a big purge) is not started twice.
    if (this.running) return;
    this.running = true;
    const { store, log, now, settings } = this.d;
    try {
      if (await store.expireReceiptWindows(1000)) this.d.onEvents();
      for (const r of await store.dropStaleEarlyReceipts(settings.earlyReceiptHoldMs)) {
        log.warn({ carrier: r.carrier, carrierId: r.carrier_id }, "receipt for an id that never became known; dropped after the hold time");
      }
      if (now() - this.lastPurge > PURGE_EVERY_MS) {
        this.lastPurge = now();
        const purged = await store.purge(now() - settings.dedupWindowMs, now() - settings.retentionMs);
        if (purged.dedup + purged.messages + purged.events > 0) log.info(purged, "purged old records");
        const media = await this.d.purgeMedia();
        if (media.links + media.capability + media.adapted > 0) log.info(media, "purged expired media pages, capability memories and unused adaptations");
      }
    } catch (e) {
      log.error({ err: (e as Error).message }, "housekeeping failed");
    } finally {
      this.running = false;
    }
  }
}
