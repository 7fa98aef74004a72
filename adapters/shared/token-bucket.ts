// One token bucket for every rate a carrier contracts: SMPP counts submit_sm PDUs, MM7 counts SubmitReqs.

/**
 * Refills at `perSecond` up to `capacity` tokens and starts full. `perSecond` = 0 means unlimited.
 * Callers either poll (tryTake / msUntilToken, when they keep their own queue) or wait in the bucket's
 * own queue (take), served in arrival order.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly waiters: (() => void)[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  /** `now` measures intervals only (milliseconds). */
  constructor(
    private perSecond: number,
    private capacity: number,
    private readonly now: () => number,
  ) {
    this.tokens = capacity;
    this.last = now();
  }

  get rate(): number {
    return this.perSecond;
  }

  /** A new rate from now on (an SMPP node's share of its carrier's tps changed); waiters are rescheduled. */
  setRate(perSecond: number, capacity: number): void {
    if (perSecond === this.perSecond && capacity === this.capacity) return;
    this.refill();
    this.perSecond = perSecond;
    this.capacity = capacity;
    this.tokens = Math.min(this.tokens, capacity);
    clearTimeout(this.timer);
    this.timer = undefined;
    if (perSecond === 0) for (const w of this.waiters.splice(0)) w();
    else if (this.waiters.length > 0) this.schedule();
  }

  /** Takes one token if there is one (always, when unlimited). */
  tryTake(): boolean {
    if (this.perSecond === 0) return true;
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** How long until the next whole token, at least 1 ms (call after tryTake failed). */
  msUntilToken(): number {
    this.refill();
    return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.perSecond));
  }

  /** Resolves when one token is taken; undefined when one was there at once, so the caller need not await. */
  take(): Promise<void> | undefined {
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

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      while (this.waiters.length > 0 && this.tryTake()) this.waiters.shift()!();
      if (this.waiters.length > 0) this.schedule();
    }, this.msUntilToken());
  }
}
