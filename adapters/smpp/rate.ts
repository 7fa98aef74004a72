// A token bucket counting submit_sm PDUs (segments, not messages: carriers throttle per PDU, and
// Jasmin's per-message count is why its long messages get ESME_RTHROTTLED).

/**
 * Refills at `perSecond`; holds at most a tenth of a second's worth (at least one), so a burst after
 * idling stays small: a carrier that counts per sliding second would otherwise see up to twice the rate.
 * Waiters are served in arrival order.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly capacity: number;
  private readonly waiters: (() => void)[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number,
  ) {
    this.capacity = Math.max(1, perSecond / 10);
    this.tokens = this.capacity;
    this.last = now();
  }

  /** Resolves when one token is taken. With perSecond = 0 (unlimited) it never waits. */
  take(): Promise<void> | undefined {
    if (this.perSecond === 0) return undefined;
    if (this.waiters.length === 0 && this.tryTake()) return undefined;
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.schedule();
    });
  }

  /** Drops every waiter without a token (used on stop); they resolve and then see the carrier stopped. */
  releaseAll(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiters.splice(0)) w();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) * this.perSecond) / 1000);
    this.last = t;
  }

  private tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private schedule(): void {
    if (this.timer) return;
    this.refill();
    const wait = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.perSecond));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      while (this.waiters.length > 0 && this.tryTake()) this.waiters.shift()!();
      if (this.waiters.length > 0) this.schedule();
    }, wait);
  }
}
