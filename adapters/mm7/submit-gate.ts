// Per-carrier admission for submits: at most `concurrency` in flight and `rate` per second (token
// bucket), the excess waiting in FIFO order. Carriers contract a TPS and cut off VASPs that exceed it.
import { TokenBucket } from "../shared/token-bucket.ts";

export type Admission = "go" | "busy" | "stopped";

export interface GateLimits {
  concurrency: number;
  /** Per second; 0 = unlimited. */
  rate: number;
  burst: number;
  queueLimit: number;
}

export class SubmitGate {
  private active = 0;
  private readonly bucket: TokenBucket;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly waiting: ((a: Admission) => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private stopped = false;

  /** `clock` is monotonic milliseconds; the gate only measures intervals. */
  constructor(
    private readonly limits: GateLimits,
    clock: () => number = () => performance.now(),
  ) {
    this.bucket = new TokenBucket(limits.rate, limits.burst, clock);
  }

  /** Waits for a slot; "go" must be paired with release(). */
  acquire(): Promise<Admission> {
    if (this.stopped) return Promise.resolve("stopped");
    if (this.waiting.length >= this.limits.queueLimit) return Promise.resolve("busy");
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.pump();
    });
  }

  release(): void {
    this.active--;
    if (this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
    this.pump();
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Refuses new submits and answers every queued one "stopped". */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiting.splice(0)) w("stopped");
  }

  /** Resolves when nothing is in flight. */
  idle(): Promise<void> {
    return this.active === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r));
  }

  private pump(): void {
    while (this.waiting.length > 0 && this.active < this.limits.concurrency) {
      if (!this.bucket.tryTake()) {
        this.schedule(this.bucket.msUntilToken());
        return;
      }
      this.active++;
      this.waiting.shift()!("go");
    }
  }

  private schedule(ms: number): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, ms);
  }
}
