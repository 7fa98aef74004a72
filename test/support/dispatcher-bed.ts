// A dispatcher on its own, wired as src/app.ts wires it (real SQLite file, real carriers from the file's
// [carriers], the real router, media fetcher and receipts path) but on a fake clock: its poll timers and
// sleeps fire only when a test advances the clock, so a test sees exactly which claims the wakes made.
import { afterEach } from "bun:test";
import { join } from "node:path";
import pino, { type Logger } from "pino";
import type { Channel, MessagePayload, StoredMessage } from "../../src/domain/message.ts";
import { RouteTable } from "../../src/domain/route.ts";
import { createEgress } from "../../src/egress/fetch.ts";
import { carrierEntries, storeOptions, type Config } from "../../src/config.ts";
import { createMetrics, type Metrics } from "../../src/observe/metrics.ts";
import { CarrierSet } from "../../src/pipeline/carriers.ts";
import { Dispatcher, type DispatcherClock, type DispatcherDeps } from "../../src/pipeline/dispatcher.ts";
import { createMediaFetcher } from "../../src/pipeline/media.ts";
import { createMediaServices } from "../../src/pipeline/media-services.ts";
import { carrierEvents } from "../../src/pipeline/receipts.ts";
import { Router } from "../../src/pipeline/router.ts";
import { PostgresStore } from "../../src/store/postgres/store.ts";
import { SqliteStore } from "../../src/store/sqlite/store.ts";
import { tempDir, testConfig, waitFor } from "./app.ts";

/** Timers and sleeps that fire only in `advance()`; every delay asked for is kept. */
export class FakeClock implements DispatcherClock {
  t = 1_700_000_000_000;
  private seq = 0;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  readonly sleeps = new Map<number, { at: number; fn: () => void }>();
  /** Delays passed to setTimeout, in order. */
  readonly delays: number[] = [];
  /** Durations passed to sleep, in order. */
  readonly slept: number[] = [];
  cleared = 0;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    this.timers.set(++this.seq, { at: this.t + ms, fn });
    this.delays.push(ms);
    return this.seq;
  };
  clearTimeout = (h: unknown) => {
    if (this.timers.delete(h as number)) this.cleared++;
  };
  sleep = (ms: number) => {
    this.slept.push(ms);
    return new Promise<void>((resolve) => this.sleeps.set(++this.seq, { at: this.t + ms, fn: resolve }));
  };
  /** Moves the clock on and fires what came due, timers and sleeps alike. */
  advance(ms: number): void {
    this.t += ms;
    for (const set of [this.timers, this.sleeps])
      for (const [id, x] of [...set]) {
        if (x.at > this.t) continue;
        set.delete(id);
        x.fn();
      }
  }
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface Bed {
  clock: FakeClock;
  store: SqliteStore;
  metrics: Metrics;
  router: Router;
  carriers: CarrierSet;
  dispatcher: Dispatcher;
  lines: LogLine[];
  /** Every claim: its channel, the limit asked, how many it got, and how many claims of its lane ran at once. */
  claims: { channel: Channel; limit: number; got: number; overlapping: number }[];
  /** The next claim to end keeps its answer (already taken from the database) until the returned function is called. */
  holdClaim(): () => void;
  finals: number;
  accept(channel: Channel, to: string, extra?: Partial<MessagePayload>): Promise<string>;
  /** No claim or poll scheduling under way, `busy` submits in flight (default none), and `timers` poll timers set. */
  settled(timers?: number, busy?: number): Promise<void>;
  state(id: string): Promise<StoredMessage>;
  /** A counter's value for these labels (0 when the series does not exist). */
  counter(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

export interface BedOptions {
  config?: Record<string, unknown>;
  deps?: Partial<DispatcherDeps>;
  dir?: string;
  /** Shared with another bed on the same database (a restart). */
  clock?: FakeClock;
  onReceiptChange?: (mayFallBack: boolean) => void;
  /** A node of a cluster on this PostgreSQL database instead of a SQLite file (`store.db` is then absent). */
  pg?: { url: string; nodeId: string };
  /** The dispatcher on the real clock (its default); the store and carriers keep the fake one. */
  realClock?: boolean;
}

export async function dispatcherBed(o: BedOptions = {}): Promise<Bed> {
  const clock = o.clock ?? new FakeClock();
  const dir = o.dir ?? tempDir();
  const config: Config = testConfig(dir, o.config ?? {});
  const now = o.realClock ? Date.now : clock.now;
  const lines: LogLine[] = [];
  const log: Logger = pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  const metrics = createMetrics();
  let finals = 0;
  const store = o.pg
    ? ((await PostgresStore.open({ ...storeOptions(config, now), url: o.pg.url, nodeId: o.pg.nodeId, poolSize: 3 })) as unknown as SqliteStore)
    : SqliteStore.open(join(dir, "gateway.db"), { ...storeOptions(config, now) });
  const egress = createEgress({ allow: config.egress.allow });
  const media = createMediaFetcher({ egress, maxBytes: config.media.max_bytes, timeoutMs: config.media.timeout_ms, maxRedirects: 0, cacheEntries: 0, cacheTtlMs: 0, spoolDir: join(dir, "spool"), now, warn: () => {} });
  const carriers = new CarrierSet(config, { log, now, binds: (c) => ({ renewEveryMs: config.node.lease_ms, hold: (n) => store.holdBinds(c, n), release: (s) => store.releaseBinds(c, s) }), openCarrierIds: (n) => store.openCarrierIds(n) });
  const nameOf = new Map(carrierEntries(config).map((e) => [e.key, e.section.name]));
  const router = new Router({
    routes: new RouteTable(config.routes.map((r) => ({ ...r, carriers: r.carriers.map((k) => nameOf.get(k) ?? k) })), { mms: config.carriers.mms.name, sms: config.carriers.sms.name }),
    state: (name) => carriers.byName.get(name)?.carrier.submitState(),
    standby: (name) => carriers.byName.get(name)?.carrier.standby?.() ?? false,
    failAfterErrors: config.delivery.failover_after_errors,
    probeMs: config.delivery.failover_probe_ms,
    now,
  });
  const services = createMediaServices({ config, store, fetcher: media, metrics, now, tmpDir: join(dir, "convert"), warn: () => {}, info: () => {} });
  const dispatcher = new Dispatcher({
    store,
    carriers: carriers.byName,
    router,
    media,
    log,
    metrics,
    concurrency: { mms: carriers.concurrency("mms"), sms: carriers.concurrency("sms") },
    claimBatch: config.delivery.claim_batch,
    onFinal: () => finals++,
    clock: o.realClock ? undefined : clock,
    ...services.dispatcherHooks,
    ...o.deps,
  });
  await carriers.start(
    carrierEvents({
      store,
      accounts: () => config.accounts,
      log,
      metrics,
      onChange: (mayFallBack) => {
        o.onReceiptChange?.(mayFallBack);
        if (mayFallBack) dispatcher.wake("sms");
      },
    }),
  );

  const claims: Bed["claims"] = [];
  let holding: Promise<void> | null = null;
  const running = { mms: 0, sms: 0, next: 0 };
  const claimDue = store.claimDue.bind(store);
  store.claimDue = async (channel, limit, assign) => {
    running[channel]++;
    const c = { channel, limit, got: 0, overlapping: running[channel] };
    claims.push(c);
    try {
      const got = await claimDue(channel, limit, assign);
      c.got = got.length;
      const held = holding;
      holding = null;
      if (held) await held;
      return got;
    } finally {
      running[channel]--;
    }
  };
  const nextDue = store.nextDue.bind(store);
  store.nextDue = async (state, channel) => {
    running.next++;
    try {
      return await nextDue(state, channel);
    } finally {
      running.next--;
    }
  };

  const bed: Bed = {
    clock,
    store,
    metrics,
    router,
    carriers,
    dispatcher,
    lines,
    claims,
    holdClaim() {
      let release!: () => void;
      holding = new Promise((r) => (release = r));
      return release;
    },
    get finals() {
      return finals;
    },
    async accept(channel, to, extra = {}) {
      const payload: MessagePayload = { from: "18885551234", to, subject: "s", text: `to ${to}`, fallback_text: "fb", media: [], custom_data: null, callback_url: "http://127.0.0.1:9/cb", metadata: null, ...extra };
      const r = await store.accept({ accountId: "acme", requestId: crypto.randomUUID(), channel, payload, bodyHash: "h", expiresAt: now() + 3_600_000 });
      return r.messageId!;
    },
    async settled(timers = 2, busy = 0) {
      await waitFor("the dispatcher to settle", () => running.mms + running.sms + running.next === 0 && dispatcher.busy() === busy && clock.timers.size === timers);
      // A submit answer's wake runs in the same turn as busy() reaching 0: let it start its claim.
      await Bun.sleep(1);
      await waitFor("the dispatcher to settle", () => running.mms + running.sms + running.next === 0 && dispatcher.busy() === busy && clock.timers.size === timers);
    },
    async state(id) {
      return (await store.getMessage(id))!;
    },
    async counter(name, labels = {}) {
      const m = await metrics.registry.getSingleMetric(name)!.get();
      const want = Object.entries(labels);
      return m.values.filter((v) => Object.keys(v.labels).length === want.length && want.every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
    },
    async stop() {
      const stopped = dispatcher.stop(0);
      clock.advance(0);
      await stopped;
      await carriers.stop(0);
      await store.close();
    },
  };
  return bed;
}

/** A bed per call, stopped after each test of the file. */
export function bedPerTest(): (o?: BedOptions) => Promise<Bed> {
  let beds: Bed[] = [];
  afterEach(async () => {
    for (const b of beds) await b.stop();
    beds = [];
  });
  return async (o) => {
    const b = await dispatcherBed(o);
    beds.push(b);
    return b;
  };
}

/** The stored last_error of a message (JSON), from the SQLite file. */
export function lastError(b: Bed, id: string): { code: string; message: string } {
  return JSON.parse((b.store.db.query("SELECT last_error FROM messages WHERE id = ?").get(id) as { last_error: string }).last_error);
}
