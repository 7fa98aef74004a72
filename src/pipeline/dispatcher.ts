// Claims due messages in batches, submits them within each carrier's concurrency, and records what
// the carrier said. Restartable from the database alone: whatever was in memory is found again there.
import type { Logger } from "pino";
import type { MediaPart, MmsCarrier, MmsSubmit, SmsCarrier, SubmitResult } from "../../adapters/carrier.ts";
import type { Channel, StoredMessage } from "../domain/message.ts";
import type { Metrics } from "../observe/metrics.ts";
import { StorageUnavailable, type Store } from "../store/index.ts";
import type { Router } from "./router.ts";

export interface MediaSource {
  get(item: { url: string; content_type?: string }): Promise<MediaPart | { kind: "temporary" | "permanent"; code: string; message: string }>;
}

/** The dispatcher's clock and timers: the real ones, or a test's fake clock. */
export interface DispatcherClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  sleep(ms: number): Promise<void>;
}

const realClock: DispatcherClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  sleep: (ms) => Bun.sleep(ms),
};

export type ChannelCarrier = { channel: "mms"; carrier: MmsCarrier } | { channel: "sms"; carrier: SmsCarrier };

export interface DispatcherDeps {
  store: Store;
  /** Every carrier by its name. */
  carriers: Map<string, ChannelCarrier>;
  router: Router;
  media: MediaSource;
  log: Logger;
  metrics: Metrics;
  /** Submits in flight per channel (over all its carriers). */
  concurrency: Record<Channel, number>;
  claimBatch: number;
  /** Submit nothing (delivery.paused). */
  paused?: boolean;
  /** After a fallback or any change that makes more work due. */
  onFinal?: () => void;
  /** Each carrier answer (the status page's per-carrier charts). */
  onSubmitted?: (carrier: string, outcome: SubmitResult["kind"]) => void;
  /**
   * The longest a lane waits before looking for due work by itself (written by another process, a
   * carrier back up); default one second. Everything this process makes due wakes the lane at once.
   */
  pollMs?: number;
  /** Fits the media to `carrier`'s limit (its own profile); the parts to send, or why they cannot fit. */
  adapt?: (m: MmsSubmit, carrier: MmsCarrier) => Promise<MediaPart[] | { code: string; message: string }>;
  /** Why this recipient goes straight to the SMS fallback (capability memory), or null. */
  rememberedNoMms?: (to: string) => Promise<string | null>;
  /** The fallback SMS text (with the hosted page link when one is configured). */
  fallbackText?: (m: StoredMessage, carrier: SmsCarrier) => Promise<string>;
  /** Default: the real clock. */
  clock?: DispatcherClock;
}

interface Lane {
  channel: Channel;
  inFlight: number;
  pumping: boolean;
  /** The last claim left due messages to other nodes (their carrier's binds are there). */
  leftDue: boolean;
  timer: unknown;
  /**
   * Work may be due that no claim has looked for yet: set by every wake and by a full claim, cleared as
   * a claim starts. A freed slot claims only while it is set: an empty claim is a write transaction.
   */
  maybeDue: boolean;
}

export class Dispatcher {
  private readonly lanes: Record<Channel, Lane>;
  private stopping = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly pumps = new Set<Promise<void>>();
  private readonly clock: DispatcherClock;

  constructor(private readonly d: DispatcherDeps) {
    this.clock = d.clock ?? realClock;
    const lane = (channel: Channel): Lane => ({ channel, inFlight: 0, pumping: false, leftDue: false, timer: null, maybeDue: true });
    this.lanes = { mms: lane("mms"), sms: lane("sms") };
  }

  start(): void {
    this.wake("mms");
    this.wake("sms");
  }

  /** Something may be due on `channel` now. Cheap to call often: concurrent calls coalesce. */
  wake(channel: Channel): void {
    if (this.stopping || this.d.paused) return;
    const lane = this.lanes[channel];
    lane.maybeDue = true;
    // A running pump claims again when its claim ends and finds maybeDue set.
    if (lane.pumping) return;
    const p = this.pump(lane).finally(() => this.pumps.delete(p));
    this.pumps.add(p);
  }

  /** Stops claiming; waits for in-flight submits up to the deadline. */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    for (const lane of Object.values(this.lanes)) if (lane.timer) this.clock.clearTimeout(lane.timer);
    // A claim already under way finishes and its messages join `inFlight`; waiting only for the
    // submits seen before it would close the database under them and strand them in `submitting`.
    const settled = (async () => {
      await Promise.allSettled([...this.pumps]);
      await Promise.allSettled([...this.inFlight]);
    })();
    await Promise.race([settled, this.clock.sleep(deadlineMs)]);
  }

  busy(): number {
    return this.lanes.mms.inFlight + this.lanes.sms.inFlight;
  }

  private async pump(lane: Lane): Promise<void> {
    lane.pumping = true;
    try {
      do {
        const free = this.d.concurrency[lane.channel] - lane.inFlight;
        if (free <= 0 || this.stopping) break;
        // Other nodes hold every bind of this channel's carriers: claiming here would only lock their rows.
        if (this.standingBy(lane.channel)) break;
        const want = Math.min(free, this.d.claimBatch);
        // Cleared before the claim: a wake while it runs says its work may have come too late for it.
        lane.maybeDue = false;
        let claimed: StoredMessage[];
        lane.leftDue = false;
        const choose = (m: StoredMessage) => {
          const carrier = this.d.router.choose(m);
          if (carrier === null) lane.leftDue = true;
          return carrier;
        };
        try {
          claimed = await this.d.store.claimDue(lane.channel, want, choose);
        } catch (e) {
          lane.maybeDue = true;
          this.d.log.error({ err: (e as Error).message, channel: lane.channel }, "claiming due messages failed; retrying shortly");
          break;
        }
        for (const m of claimed) this.track(lane, m);
        if (claimed.length === want) lane.maybeDue = true;
      } while (lane.maybeDue && !this.stopping);
    } finally {
      lane.pumping = false;
      void this.schedule(lane);
    }
  }

  /** Wakes the lane when its next message is due (a retry's backoff), at least every second. */
  private async schedule(lane: Lane): Promise<void> {
    if (this.stopping) return;
    // A full lane is woken by its next finished submit; polling it meanwhile would only spin.
    if (lane.inFlight >= this.d.concurrency[lane.channel]) {
      if (lane.timer) this.clock.clearTimeout(lane.timer);
      lane.timer = null;
      return;
    }
    let delay = this.d.pollMs ?? 1000;
    try {
      // What is due but left to other nodes would wake this lane at once, again and again: poll instead.
      const next = lane.leftDue || this.standingBy(lane.channel) ? null : await this.d.store.nextDue("accepted", lane.channel);
      if (next !== null) delay = Math.max(5, Math.min(delay, next - this.clock.now()));
    } catch {
      // storage trouble: the one-second retry covers it
    }
    if (this.stopping) return;
    if (lane.timer) this.clock.clearTimeout(lane.timer);
    lane.timer = this.clock.setTimeout(() => {
      lane.timer = null;
      this.wake(lane.channel);
    }, delay);
  }

  private standingBy(channel: Channel): boolean {
    let any = false;
    for (const c of this.d.carriers.values()) {
      if (c.channel !== channel) continue;
      if (!c.carrier.standby?.()) return false;
      any = true;
    }
    return any;
  }

  private track(lane: Lane, m: StoredMessage): void {
    lane.inFlight++;
    const p = this.submitOne(m)
      .catch((e) => {
        this.d.log.error({ messageId: m.id, requestId: m.requestId, err: (e as Error).stack }, "submit bookkeeping failed");
        return false;
      })
      .then((taken) => {
        lane.inFlight--;
        this.inFlight.delete(p);
        // A message the carrier took makes nothing due; any other answer may (a retry, the route's next carrier).
        if (!taken || lane.maybeDue) this.wake(lane.channel);
        // A lane that was full has no poll timer (schedule() leaves it to finished submits); once it has room
        // again it needs one, or a retry coming due would wait for an outside wake (e.g. after a SIGHUP lowered
        // the concurrency below what was in flight).
        else if (!lane.timer && !lane.pumping) void this.schedule(lane);
      });
    this.inFlight.add(p);
  }

  /** True when the carrier took the message and that is stored. */
  private async submitOne(m: StoredMessage): Promise<boolean> {
    const name = m.carrier!;
    const started = performance.now();
    let result: SubmitResult;
    // Set when the message never reached the carrier (its media could not be had): not the carrier's answer.
    const unsent = { media: false };
    for (let tried: ChannelCarrier | undefined; ; ) {
      const target = this.d.carriers.get(name);
      try {
        if (!target || target.channel !== m.channel) {
          // Pinned to a carrier the configuration no longer has (or not of this channel): it waits for it.
          result = { kind: "temporary", code: "gateway:no_such_carrier", message: `carrier "${name}" is not configured for ${m.channel}` };
        } else result = target.channel === "mms" ? await this.submitMms(m, target.carrier, unsent) : await this.submitSms(m, target.carrier);
      } catch (e) {
        // An adapter that throws has a bug; the message must not be lost to it.
        result = { kind: "temporary", code: "gateway:adapter_error", message: (e as Error).message };
      }
      // A carrier replaced by SIGHUP while this message waited for it hands the message back unsent:
      // its replacement takes it now, once (never after an in-doubt answer: that one may have gone out).
      if (tried || !target || !handedBack(result) || this.d.carriers.get(name) === target) break;
      tried = target;
    }
    const routing = unsent.media ? { pin: false, elsewhere: false } : this.d.router.after(m, name, result);
    this.d.metrics.submitLatency.observe({ carrier: name }, (performance.now() - started) / 1000);
    this.d.metrics.submissions.inc({ carrier: name, outcome: result.kind });
    this.d.onSubmitted?.(name, result.kind);
    const log = { messageId: m.id, requestId: m.requestId, carrier: name };
    if (result.kind === "ok") this.d.log.debug({ ...log, carrierIds: result.carrierMessageIds }, "submitted");
    else this.d.log.info({ ...log, outcome: result.kind, code: result.code, reason: result.message }, "submit not accepted");
    if (result.kind === "temporary") this.d.metrics.retries.inc({ carrier: name });

    // The answer must be stored: until it is, the message stays `submitting` (the in-flight gap).
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.d.store.recordSubmit(m, name, result, routing);
        // Finals and fallbacks are counted where every path to them passes: the store's onOutcome.
        if (r.fallback) this.wake("sms");
        if (r.final || r.fallback) this.d.onFinal?.();
        return result.kind === "ok";
      } catch (e) {
        // Only storage trouble is worth retrying; anything else (the message moved on meanwhile) will
        // fail the same way forever, and the stored state is the truth.
        if (!(e instanceof StorageUnavailable)) throw e;
        if (this.stopping && attempt > 0) throw e;
        this.d.log.error({ ...log, err: (e as Error).message }, "could not store the submit answer; retrying");
        await this.clock.sleep(Math.min(5000, 100 * 2 ** attempt));
      }
    }
  }

  private async submitMms(m: StoredMessage, carrier: MmsCarrier, unsent: { media: boolean }): Promise<SubmitResult> {
    const remembered = await this.d.rememberedNoMms?.(m.payload.to);
    if (remembered) return { kind: "permanent", code: "capability:no_mms", message: remembered, fallbackEligible: true };
    const media: MediaPart[] = [];
    for (const item of m.payload.media) {
      const got = await this.d.media.get(item);
      if (!("bytes" in got)) {
        unsent.media = true;
        // Media we cannot send is not the handset's fault, but the fallback text still reaches the person.
        return got.kind === "temporary"
          ? { kind: "temporary", code: got.code, message: got.message }
          : { kind: "permanent", code: got.code, message: got.message, fallbackEligible: true };
      }
      media.push(got);
    }
    const p = m.payload;
    const submit: MmsSubmit = { messageId: m.id, requestId: m.requestId, from: p.from, to: p.to, subject: p.subject, text: p.text, media };
    if (this.d.adapt && media.length > 0) {
      const fitted = await this.d.adapt(submit, carrier);
      // Media that cannot be made to fit is no fault of the handset, but the fallback still reaches the person.
      if (!Array.isArray(fitted)) return { kind: "permanent", code: fitted.code, message: fitted.message, fallbackEligible: true };
      submit.media = fitted;
    }
    return carrier.submit(submit);
  }

  private async submitSms(m: StoredMessage, carrier: SmsCarrier): Promise<SubmitResult> {
    const p = m.payload;
    const text = !m.fallback ? p.text : this.d.fallbackText ? await this.d.fallbackText(m, carrier) : p.fallback_text;
    return carrier.submit({ messageId: m.id, requestId: m.requestId, from: p.from, to: p.to, text });
  }
}

/** The carrier stopped before the message reached it: nothing went out. */
function handedBack(r: SubmitResult): boolean {
  return r.kind === "temporary" && !r.inDoubt && r.code.endsWith(":stopped");
}
