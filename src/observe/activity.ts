// What the status page shows that Prometheus keeps elsewhere: throughput over the last minutes (in all
// and per carrier) and the last problems from the log, grouped. Small fixed rings in memory: bounded, and gone on restart by design (the
// database and /metrics are the record; this is a glance).
import { Writable } from "node:stream";
import type { SubmitResult } from "../../adapters/carrier.ts";

export type SubmitOutcome = SubmitResult["kind"];
export type OutcomeCounts = Record<SubmitOutcome, number>;

export interface ThroughputBucket {
  /** Unix milliseconds at which this bucket's interval starts. */
  start: number;
  accepted: number;
  finals: number;
  /** Carrier answers in this interval, by carrier name. */
  submits: Record<string, OutcomeCounts>;
}

export interface ErrorEvent {
  /** Unix milliseconds it was last seen. */
  at: number;
  /**
   * Events of one kind (level, message, code) about one target (the URL or carrier they name) are one
   * entry: first seen, how often, and the latest one's fields.
   */
  first: number;
  count: number;
  target: string;
  level: "warn" | "error" | "fatal";
  msg: string;
  /** The fields an operator acts on (message, request, carrier, cause); the log line has the rest. */
  fields: Record<string, string>;
}

const shownFields = ["messageId", "requestId", "carrier", "carrierId", "code", "err", "why", "reason", "detail", "url", "signal"];
const levelNames: Record<number, ErrorEvent["level"]> = { 40: "warn", 50: "error", 60: "fatal" };

export class Activity {
  private readonly ring: ThroughputBucket[] = [];
  /** Oldest first; the key says which events are the same. */
  private readonly errors: (ErrorEvent & { key: string })[] = [];

  constructor(
    private readonly now: () => number,
    readonly bucketMs = 10_000,
    readonly bucketCount = 30,
    readonly errorsKept = 50,
  ) {}

  accepted(n = 1): void {
    this.current().accepted += n;
  }

  final(n = 1): void {
    this.current().finals += n;
  }

  submitted(carrier: string, outcome: SubmitOutcome): void {
    const b = this.current();
    (b.submits[carrier] ??= { ok: 0, temporary: 0, permanent: 0 })[outcome]++;
  }

  /** The last `bucketCount` intervals, oldest first, empty ones included (a quiet minute shows as 0). */
  throughput(): ThroughputBucket[] {
    const newest = this.bucketStart(this.now());
    const out: ThroughputBucket[] = [];
    for (let i = this.bucketCount - 1; i >= 0; i--) {
      const start = newest - i * this.bucketMs;
      out.push(this.ring.find((b) => b.start === start) ?? { start, accepted: 0, finals: 0, submits: {} });
    }
    return out;
  }

  /**
   * A repeat of a kind and target already kept moves that entry to the front and counts it, so a flood
   * of one problem (an unreachable webhook URL, a guesser's wrong passwords) takes one line and cannot
   * push the other problems out.
   */
  noteError(e: Pick<ErrorEvent, "at" | "level" | "msg" | "fields">): void {
    const target = e.fields.url ?? e.fields.carrier ?? "";
    // The kind is the message and, when the line has one, its code (mm7:2002 and mm7:4007 are different problems).
    const key = JSON.stringify([e.level, e.msg, e.fields.code ?? "", target]);
    const i = this.errors.findIndex((x) => x.key === key);
    if (i !== -1) {
      const [same] = this.errors.splice(i, 1);
      this.errors.push({ ...same!, at: e.at, fields: e.fields, count: same!.count + 1 });
      return;
    }
    this.errors.push({ ...e, first: e.at, count: 1, target, key });
    if (this.errors.length > this.errorsKept) this.errors.shift();
  }

  /** Newest first. */
  recentErrors(): ErrorEvent[] {
    return this.errors.map(({ key: _key, ...e }) => e).reverse();
  }

  /**
   * A pino destination that keeps warn and above: the logger writes every line to its real
   * destination and, through a multistream, to this one.
   */
  errorStream(): Writable {
    return new Writable({
      write: (chunk: Buffer | string, _enc, done) => {
        try {
          const o = JSON.parse(String(chunk)) as Record<string, unknown>;
          const level = levelNames[o.level as number];
          if (level) {
            const fields: Record<string, string> = {};
            for (const k of shownFields) if (o[k] !== undefined && o[k] !== null) fields[k] = String(typeof o[k] === "object" ? JSON.stringify(o[k]) : o[k]).slice(0, 300);
            this.noteError({ at: typeof o.time === "number" ? o.time : this.now(), level, msg: String(o.msg ?? ""), fields });
          }
        } catch {
          // not JSON: nothing to show
        }
        done();
      },
    });
  }

  private bucketStart(t: number): number {
    return t - (t % this.bucketMs);
  }

  private current(): ThroughputBucket {
    const start = this.bucketStart(this.now());
    let b = this.ring[this.ring.length - 1];
    if (!b || b.start !== start) {
      b = { start, accepted: 0, finals: 0, submits: {} };
      this.ring.push(b);
      if (this.ring.length > this.bucketCount) this.ring.shift();
    }
    return b;
  }
}
