// Sends the outbox: events batched per (account, callback URL), each POST signed with a fresh HS256
// JWT, retried with backoff up to a max age, other 4xx dead-lettered. A message's events go out in order,
// and one batch per (account, URL) is in flight at a time (the store keeps other nodes off it).
import { SignJWT } from "jose";
import type { Logger } from "pino";
import { jitteredBackoffMs } from "../../adapters/shared/backoff.ts";
import type { Metrics } from "../observe/metrics.ts";
import type { PendingEvent, Store, WebhookKey } from "../store/index.ts";

export interface WebhookResponse {
  status: number;
}

/** The POST itself, behind the egress guard; throws on network errors, EgressRefused when refused. */
export type WebhookPost = (url: string, headers: Record<string, string>, body: string, timeoutMs: number) => Promise<WebhookResponse>;

export interface OutboxDeps {
  store: Store;
  post: WebhookPost;
  /** Account id → HS256 secret; an event for an unknown account is dead-lettered. */
  secrets: Map<string, string>;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  random?: () => number;
  isRefusal: (e: unknown) => boolean;
  /** webhooks.max_age_hours in ms: an event still not taken after this is dead-lettered. */
  maxAgeMs: number;
  /** The round timer (tests inject a fake one); setTimeout, clearTimeout and Date.now by default. */
  timers?: Timers;
  settings: {
    bearer_prefix: boolean;
    batch_max_events: number;
    batch_max_wait_ms: number;
    timeout_ms: number;
    concurrency: number;
    retry_base_ms: number;
    retry_max_ms: number;
  };
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(timer: unknown): void;
  now(): number;
}

export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

export class Outbox {
  /** (account, URL) with a batch in flight, by `accountId\nurl`: the next batch for one waits for its answer. */
  private readonly busy = new Map<string, WebhookKey>();
  private readonly keys = new Map<string, Uint8Array>();
  private readonly tokens = new Map<string, { iat: number; key: Uint8Array; jwt: string }>();
  private timer: unknown = null;
  /** Time the pending timer fires, on the timers' clock (the real one, not the injected `now`). */
  private timerAt = 0;
  private running = false;
  private again = false;
  private stopped = false;
  private active = 0;
  private readonly batches = new Set<Promise<void>>();

  private readonly t: Timers;

  constructor(private readonly d: OutboxDeps) {
    this.t = d.timers ?? realTimers;
    this.setSecrets(d.secrets);
  }

  /**
   * Reloaded accounts: the next batch is signed with the new secret. A removed account keeps its last
   * secret here, so the events it already had still go out instead of being dead-lettered.
   */
  setSecrets(secrets: Map<string, string>): void {
    for (const [account, secret] of secrets) this.keys.set(account, new TextEncoder().encode(secret));
  }

  start(): void {
    this.wake(0);
  }

  /** New events were written: send them after the batching wait (or sooner when a batch fills). */
  wake(delayMs = this.d.settings.batch_max_wait_ms): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    // A pending timer set for later (the idle one-second poll) must not hold back work due sooner.
    if (this.timer) {
      if (this.timerAt <= this.t.now() + delayMs) return;
      this.t.clear(this.timer);
    }
    this.timerAt = this.t.now() + delayMs;
    this.timer = this.t.set(() => {
      this.timer = null;
      void this.round();
    }, delayMs);
  }

  /** Stops new rounds and waits for POSTs in flight up to the deadline (they stay pending if cut). */
  async stop(deadlineMs: number): Promise<void> {
    this.stopped = true;
    if (this.timer) this.t.clear(this.timer);
    await Promise.race([Promise.allSettled([...this.batches]), Bun.sleep(deadlineMs)]);
  }

  /** One pass: pick what is due, in order per message, group it, and send within the concurrency. */
  private async round(): Promise<void> {
    this.running = true;
    let nextDelay = 1000;
    try {
      const now = this.d.now();
      const s = this.d.settings;
      const free = s.concurrency - this.active;
      if (free > 0) {
        const limit = s.batch_max_events * free;
        // Only durable events: what a power cut could undo must not reach Bloomreach.
        const due = await this.d.store.dueEvents(now, limit, [...this.busy.values()]);
        const groups = new Map<string, PendingEvent[]>();
        let leftOver = false;
        for (const e of due) {
          const key = `${e.accountId}\n${e.url}`;
          let g = groups.get(key);
          if (!g) {
            if (groups.size >= free) {
              leftOver = true;
              continue;
            }
            groups.set(key, (g = []));
          }
          if (g.length >= s.batch_max_events) {
            leftOver = true;
            continue;
          }
          g.push(e);
        }
        // Stopped while the read waited for the disk: stop() waits only for the POSTs already in flight.
        if (this.stopped) return;
        for (const [key, g] of groups) {
          this.busy.set(key, { accountId: g[0]!.accountId, url: g[0]!.url });
          this.active++;
          const p = this.send(g)
            // The outcome could not be stored (storage down): the events stay pending and go again later.
            .catch((e) => this.d.log.error({ err: (e as Error).message, events: g.length }, "could not record a webhook outcome; the events will be sent again"))
            .finally(() => {
            this.busy.delete(key);
            this.active--;
            this.batches.delete(p);
            this.wake(0);
          });
          this.batches.add(p);
        }
        if (leftOver || (due.length === limit && groups.size > 0)) nextDelay = 0;
        else {
          const next = await this.d.store.nextEventDue(now);
          if (next !== null) nextDelay = Math.min(nextDelay, Math.max(0, next - now));
        }
      }
    } catch (e) {
      this.d.log.error({ err: (e as Error).message }, "outbox round failed; retrying");
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        nextDelay = Math.min(nextDelay, this.d.settings.batch_max_wait_ms);
      }
      this.wake(nextDelay);
    }
  }

  private async send(batch: PendingEvent[]): Promise<void> {
    const first = batch[0]!;
    const seqs = batch.map((e) => e.seq);
    const key = this.keys.get(first.accountId);
    if (!key) return this.dead(batch, `no callback secret for account ${first.accountId}`);
    const jwt = await this.token(first.accountId, key);
    const headers = {
      "content-type": "application/json",
      authorization: this.d.settings.bearer_prefix ? `Bearer ${jwt}` : jwt,
      "user-agent": "mms-gateway",
    };
    const body = `[${batch.map((e) => e.body).join(",")}]`;
    let status: number;
    try {
      status = (await this.d.post(first.url, headers, body, this.d.settings.timeout_ms)).status;
    } catch (e) {
      if (this.d.isRefusal(e)) return this.dead(batch, `refused by the egress policy: ${(e as Error).message}`);
      return this.retry(batch, `network: ${(e as Error).message}`);
    }
    // Storage errors from here on reach the caller: the events stay pending and are sent again.
    if (status >= 200 && status < 300) {
      await this.d.store.eventsDelivered(seqs);
      this.d.metrics.webhookDeliveries.inc({ result: "delivered" });
      this.d.metrics.webhookEvents.inc({ result: "delivered" }, batch.length);
      const now = this.d.now();
      for (const e of batch) this.d.metrics.receiptToWebhook.observe((now - e.createdAt) / 1000);
      return;
    }
    if (!retryable(status)) return this.dead(batch, `HTTP ${status} from the callback URL`);
    await this.retry(batch, `HTTP ${status}`);
  }

  /**
   * The token for a POST: HS256 over {iat} alone, so every token an account's batches get within one second
   * is the same string. Signed once per account, key and second (each signing also imports the key); a
   * secret reloaded within the second (setSecrets) signs afresh.
   */
  private async token(accountId: string, key: Uint8Array): Promise<string> {
    const iat = Math.floor(this.d.now() / 1000);
    const cached = this.tokens.get(accountId);
    if (cached?.iat === iat && cached.key === key) return cached.jwt;
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt(iat).sign(key);
    this.tokens.set(accountId, { iat, key, jwt });
    return jwt;
  }

  private async retry(batch: PendingEvent[], why: string): Promise<void> {
    const now = this.d.now();
    const expired = batch.filter((e) => now - e.createdAt >= this.d.maxAgeMs);
    const live = batch.filter((e) => now - e.createdAt < this.d.maxAgeMs);
    if (expired.length) await this.dead(expired, `gave up after ${this.d.maxAgeMs / 3_600_000} h; last: ${why}`);
    if (live.length === 0) return;
    const attempts = Math.max(...live.map((e) => e.attempts)) + 1;
    const wait = jitteredBackoffMs(attempts, this.d.settings.retry_base_ms, this.d.settings.retry_max_ms, this.d.random ?? Math.random);
    this.d.metrics.webhookDeliveries.inc({ result: "retry" });
    this.d.log.warn({ url: redactUrl(live[0]!.url), events: live.length, ...aboutMessages(live), attempts, retryInMs: wait, why }, "webhook not delivered; will retry");
    await this.d.store.eventsRetry(
      live.map((e) => e.seq),
      now + wait,
      why,
    );
  }

  private async dead(batch: PendingEvent[], why: string): Promise<void> {
    this.d.metrics.webhookDeliveries.inc({ result: "dead" });
    this.d.metrics.webhookEvents.inc({ result: "dead" }, batch.length);
    this.d.metrics.deadLetters.inc(batch.length);
    this.d.log.error({ url: redactUrl(batch[0]!.url), events: batch.map((e) => e.eventId), ...aboutMessages(batch), why }, "webhook events dead-lettered");
    await this.d.store.eventsDead(
      batch.map((e) => e.seq),
      why,
    );
  }
}

/**
 * 408, 429 and 5xx are retried as the contract says; so is 401, because it means the token was refused
 * (a secret being rotated, a clock off) and a fresh token later may pass: dead-lettering a whole
 * campaign's reports on a key rotation would be worse than retrying until the max age.
 */
export function retryable(status: number): boolean {
  return status === 401 || status === 408 || status === 429 || status >= 500;
}

/** The messages and request ids a batch is about, for its log line (the request id is in each event's body). */
function aboutMessages(batch: PendingEvent[]): { messageIds: (string | null)[]; requestIds: (string | null)[]; carrierIds: (string | null)[] } {
  const bodies = batch.map((e) => {
    try {
      return JSON.parse(e.body) as { request_id?: string | null; carrier_message_id?: string | null };
    } catch {
      return {};
    }
  });
  return {
    messageIds: batch.map((e) => e.messageId),
    requestIds: bodies.map((b) => b.request_id ?? null),
    carrierIds: bodies.map((b) => b.carrier_message_id ?? null),
  };
}

/** Callback URLs may carry tokens in their query; logs show only scheme, host and path. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? "?…" : ""}`;
  } catch {
    return "<invalid url>";
  }
}
