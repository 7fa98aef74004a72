// The bind's window, after Cloudhopper's Window: a fixed number of submit slots (waiters served in
// arrival order, none while the SMSC asked us to throttle), and every request outstanding by its
// sequence number with its response deadline. It knows nothing of sockets, so it is tested without one.

import type { Pdu } from "./pdu.ts";

/** What a request came to. "link-down": written, then the link went (the peer may have it); "unsent": never written. */
export type Response = Pdu | "timeout" | "link-down" | "unsent";

interface Pending {
  deadline: number;
  /** Handed to the socket: from here on the peer may have it. */
  written: boolean;
  resolve: (r: Response) => void;
}

export interface WindowCounters {
  timeouts: number;
  /** Highest number of slots taken at once, for checking the window holds. */
  maxInFlight: number;
}

export class SmppWindow {
  private readonly pending = new Map<number, Pending>();
  private sequence = 0;
  private taken = 0;
  private readonly waiters: ((granted: boolean) => void)[] = [];
  private isOpen = false;
  private pausedUntil = 0;
  private pauseTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly size: number,
    private readonly responseTimeoutMs: number,
    private readonly now: () => number,
    private readonly counters: WindowCounters,
  ) {}

  // ---- slots ---------------------------------------------------------------------------------

  /** Slots taken: submits between acquire and release. */
  get inFlight(): number {
    return this.taken;
  }

  get paused(): boolean {
    return this.pausedUntil > this.now();
  }

  /** Waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** True at once when a slot is free; else a promise that grants one (true) or gives up (false). */
  acquire(): true | Promise<boolean> {
    if (this.waiters.length === 0 && this.taken < this.size && !this.paused) {
      this.grant();
      return true;
    }
    return new Promise<boolean>((resolve) => {
      this.waiters.push(resolve);
      this.pump();
    });
  }

  release(): void {
    this.taken--;
    this.pump();
  }

  /** Slots are granted to waiters only while open (the bind is up); waiters keep their place meanwhile. */
  open(): void {
    this.isOpen = true;
    this.pump();
  }

  close(): void {
    this.isOpen = false;
    clearTimeout(this.pauseTimer);
    this.pauseTimer = undefined;
  }

  /** Every submit waiting for a slot gives up (stop, or no rebind in time). */
  refuseWaiters(): void {
    for (const w of this.waiters.splice(0)) w(false);
  }

  /** No slot is granted for `ms` (ESME_RTHROTTLED). */
  pause(ms: number): void {
    this.pausedUntil = this.now() + ms;
  }

  private grant(): void {
    this.taken++;
    if (this.taken > this.counters.maxInFlight) this.counters.maxInFlight = this.taken;
  }

  private pump(): void {
    if (!this.isOpen || this.waiters.length === 0) return;
    const wait = this.pausedUntil - this.now();
    if (wait > 0) {
      this.pauseTimer ??= setTimeout(() => {
        this.pauseTimer = undefined;
        this.pump();
      }, wait);
      return;
    }
    while (this.waiters.length > 0 && this.taken < this.size) {
      this.grant();
      this.waiters.shift()!(true);
    }
  }

  // ---- requests outstanding ------------------------------------------------------------------

  /** Requests sent or queued and not yet answered. */
  get outstanding(): number {
    return this.pending.size;
  }

  /** 1..0x7FFFFFFF, skipping numbers still outstanding after a wrap. */
  nextSequence(): number {
    do this.sequence = this.sequence >= 0x7fffffff ? 1 : this.sequence + 1;
    while (this.pending.has(this.sequence));
    return this.sequence;
  }

  /** Registers a request under `sequence`; resolves with its response, or with why there is none. */
  track(sequence: number): Promise<Response> {
    return new Promise<Response>((resolve) => {
      this.pending.set(sequence, { deadline: this.now() + this.responseTimeoutMs, written: false, resolve });
    });
  }

  /** These requests were handed to the socket. */
  markWritten(sequences: readonly number[]): void {
    for (const sequence of sequences) {
      const p = this.pending.get(sequence);
      if (p) p.written = true;
    }
  }

  /** A response arrived; false when no request is outstanding under its sequence number. */
  complete(response: Pdu): boolean {
    const p = this.pending.get(response.sequence);
    if (!p) return false;
    this.pending.delete(response.sequence);
    p.resolve(response);
    return true;
  }

  /**
   * Resolves every request past its deadline with "timeout" and returns their sequence numbers. All
   * requests share one timeout, so insertion order is deadline order: it stops at the first live one.
   */
  expire(): number[] {
    const t = this.now();
    const expired: number[] = [];
    for (const [sequence, p] of this.pending) {
      if (p.deadline > t) break;
      this.pending.delete(sequence);
      this.counters.timeouts++;
      expired.push(sequence);
      p.resolve("timeout");
    }
    return expired;
  }

  /**
   * The link is gone: every outstanding request learns "link-down" if it was written (the peer may
   * have it: Cloudhopper's unacknowledged PDUs on disconnect), else "unsent". Returns how many.
   */
  cancelAll(): number {
    const handedBack = [...this.pending.values()];
    this.pending.clear();
    for (const p of handedBack) p.resolve(p.written ? "link-down" : "unsent");
    return handedBack.length;
  }
}
