// The outbox on its own, on a real SQLite store and a real webhook sink on loopback, with the clock standing
// still unless a test moves it; optionally a fake round timer (FakeTimers) that the test fires by hand.
import { join } from "node:path";
import pino from "pino";
import { createMetrics, type Metrics } from "../../src/observe/metrics.ts";
import { Outbox, type OutboxDeps, type Timers, type WebhookPost } from "../../src/pipeline/outbox.ts";
import { SqliteStore } from "../../src/store/sqlite/store.ts";
import { ACME_SECRET, tempDir } from "./app.ts";
import { startSink, type Sink } from "./sink.ts";

export const HOUR = 3_600_000;

/** What each test registered to close; the test file runs it in afterEach. */
export const rigCleanup: (() => Promise<void> | void)[] = [];
export async function runRigCleanup(): Promise<void> {
  for (const c of rigCleanup.splice(0).reverse()) await c();
}

export interface Posted {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface Rig {
  store: SqliteStore;
  path: string;
  outbox: Outbox;
  sink: Sink;
  clock: { t: number };
  metrics: Metrics;
  posted: Posted[];
  logs: { level: number; msg: string; [k: string]: unknown }[];
  /** Records an inbound message for `url` (an event of account acme, or `account`). */
  event(url: string, n: number, account?: string): Promise<string>;
  row(eventId: string): { state: string; attempts: number; due_at: number | null; last_error: string | null };
  /** A counter's value, or a histogram's sample count, for these labels. */
  metric(name: "webhookDeliveries" | "webhookEvents" | "deadLetters" | "receiptToWebhook", result?: string): Promise<number>;
}

export const realPost: WebhookPost = async (url, headers, body, timeoutMs) => ({ status: (await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(timeoutMs) })).status });

export function rig(o: { settings?: Partial<OutboxDeps["settings"]>; maxAgeMs?: number; post?: WebhookPost; isRefusal?: (e: unknown) => boolean; timers?: Timers } = {}): Rig {
  const sink = startSink(ACME_SECRET, { bearer: o.settings?.bearer_prefix ?? false });
  const clock = { t: Date.now() };
  const now = () => clock.t;
  const path = join(tempDir(), "g.db");
  const store = SqliteStore.open(path, { now, retryBaseMs: 1000, retryMaxMs: 60000, receiptWindowMs: HOUR, intermediateEvents: false, inFlightPolicy: "at-most-once" });
  const posted: Posted[] = [];
  const logs: Rig["logs"] = [];
  const metrics = createMetrics();
  const log = pino({ level: "warn" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const post = o.post ?? realPost;
  const outbox = new Outbox({
    store,
    secrets: new Map([["acme", ACME_SECRET]]),
    log,
    metrics,
    now,
    random: () => 0.5,
    isRefusal: o.isRefusal ?? (() => false),
    maxAgeMs: o.maxAgeMs ?? 24 * HOUR,
    timers: o.timers,
    settings: {
      bearer_prefix: false,
      batch_max_events: 100,
      batch_max_wait_ms: 5,
      timeout_ms: 5000,
      concurrency: 4,
      retry_base_ms: 1000,
      retry_max_ms: 60000,
      ...o.settings,
    },
    post: (url, headers, body, timeoutMs) => {
      posted.push({ url, headers, body });
      return post(url, headers, body, timeoutMs);
    },
  });
  rigCleanup.push(async () => {
    await outbox.stop(5000);
    await store.close();
    sink.stop();
  });
  return {
    store,
    path,
    outbox,
    sink,
    clock,
    metrics,
    posted,
    logs,
    event: (url, n, account = "acme") =>
      store.recordInbound(account, url, { carrier: "mmsc", channel: "sms", carrierMessageId: `mo-${n}`, from: "15550001", to: "15550002", text: `mo ${n}`, media: [], timestamp: clock.t }),
    metric: async (name, result) => {
      const values = (await metrics[name].get()).values;
      const v = values.find((x: { labels: Record<string, unknown>; metricName?: string }) => (name === "receiptToWebhook" ? x.metricName?.endsWith("_count") : result === undefined || x.labels.result === result));
      return v?.value ?? 0;
    },
    row: (eventId) => store.db.query("SELECT state, attempts, due_at, last_error FROM events WHERE event_id = ?").get(eventId) as ReturnType<Rig["row"]>,
  };
}

/** A promise the test opens: what waits on it (a POST, a read) is held until then. */
export function gate(): { wait: () => Promise<void>; open: () => void; reached: number } {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  const g = {
    reached: 0,
    wait: () => {
      g.reached++;
      return p;
    },
    open,
  };
  return g;
}

/** A round timer that only fires when the test says so, on a clock of its own (starting at 0). */
export class FakeTimers implements Timers {
  at = 0;
  /** Every delay asked for, in order. */
  readonly delays: number[] = [];
  cleared = 0;
  private readonly pending = new Map<object, { fn: () => void; due: number }>();

  set(fn: () => void, ms: number): unknown {
    const handle = {};
    this.pending.set(handle, { fn, due: this.at + ms });
    this.delays.push(ms);
    return handle;
  }

  clear(timer: unknown): void {
    if (this.pending.delete(timer as object)) this.cleared++;
  }

  now(): number {
    return this.at;
  }

  /** When each pending timer is due, soonest first. */
  get dues(): number[] {
    return [...this.pending.values()].map((p) => p.due).sort((a, b) => a - b);
  }

  /** Fires the timer due first, moving this clock to its time. */
  fire(): void {
    const [handle, t] = [...this.pending.entries()].sort((a, b) => a[1].due - b[1].due)[0] ?? [];
    if (!handle || !t) throw new Error("no timer pending");
    this.pending.delete(handle);
    this.at = Math.max(this.at, t.due);
    t.fn();
  }
}
