// The composition root: opens the store, builds the carriers and the three loops (HTTP, dispatcher,
// outbox), and wires them. Nothing else creates long-lived objects.
import { Elysia } from "elysia";
import pino, { type Logger } from "pino";
import type { MmsCarrier, SmsCarrier } from "../adapters/carrier.ts";
import { createSandboxCarrier } from "../adapters/sandbox/index.ts";
import { createMm7Carrier, type Mm7Carrier } from "../adapters/mm7/index.ts";
import { createSmppCarrier } from "../adapters/smpp/index.ts";
import { mm7Settings, smppSettings, type Config } from "./config.ts";
import { carrierInbound } from "./http/carrier-inbound.ts";
import { channelApi } from "./http/channel-api.ts";
import { ops } from "./http/ops.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { Dispatcher } from "./pipeline/dispatcher.ts";
import { createEgress, EgressRefused } from "./pipeline/egress.ts";
import { createMediaFetcher } from "./pipeline/media.ts";
import { Outbox } from "./pipeline/outbox.ts";
import { carrierEvents } from "./pipeline/receipts.ts";
import { Store } from "./store/store.ts";

export interface AppOptions {
  log?: Logger;
  now?: () => number;
}

export interface App {
  url: string;
  port: number;
  store: Store;
  metrics: Metrics;
  log: Logger;
  /** Graceful: stop intake, finish in-flight work within the deadline, flush, close the database. */
  stop(): Promise<void>;
}

export function createLogger(config: Config): Logger {
  return pino({
    level: config.log.level,
    base: undefined,
    redact: { paths: ["password", "*.password", "callback_secret", "*.callback_secret", "headers.authorization"], censor: "<redacted>" },
  });
}

function createCarriers(config: Config, log: Logger, now: () => number): { mms: MmsCarrier; sms: SmsCarrier; mm7Inbound: Mm7Carrier | null } {
  const { mms, sms } = config.carriers;
  const mm7 = mms.kind === "mm7" ? createMm7Carrier(mm7Settings(config), { log: log.child({ carrier: mms.name }), now }) : null;
  return {
    mms: mm7 ?? createSandboxCarrier({ name: mms.name, channel: "mms", reportDelayMs: mms.sandbox_report_delay_ms, now }),
    sms:
      sms.kind === "smpp"
        ? createSmppCarrier(sms.name, smppSettings(config), { log: log.child({ carrier: sms.name }), now })
        : createSandboxCarrier({ name: sms.name, channel: "sms", reportDelayMs: sms.sandbox_report_delay_ms, now }),
    mm7Inbound: mm7,
  };
}

export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const now = options.now ?? Date.now;
  const log = options.log ?? createLogger(config);
  const metrics = createMetrics();
  const store = Store.open(config.store.path, {
    now,
    retryBaseMs: config.delivery.retry_base_ms,
    retryMaxMs: config.delivery.retry_max_ms,
    receiptWindowMs: config.delivery.receipt_window_hours * 3_600_000,
    intermediateEvents: config.delivery.intermediate_events,
  });
  const recovered = await store.recoverInFlight(config.delivery.in_flight_policy);
  if (recovered > 0) log.warn({ count: recovered, policy: config.delivery.in_flight_policy }, "messages were in flight when the gateway stopped");

  const egress = createEgress({ allow: config.egress.allow });
  const media = createMediaFetcher({
    egress,
    maxBytes: config.media.max_bytes,
    timeoutMs: config.media.timeout_ms,
    maxRedirects: config.media.max_redirects,
    cacheEntries: config.media.cache_entries,
    cacheTtlMs: 3_600_000,
    now,
    warn: (o, m) => log.warn(o, m),
  });
  const { mms, sms, mm7Inbound } = createCarriers(config, log, now);

  const outbox = new Outbox({
    store,
    log,
    metrics,
    now,
    secrets: new Map(config.accounts.map((a) => [a.id, a.callback_secret])),
    isRefusal: (e) => e instanceof EgressRefused,
    settings: config.webhooks,
    post: async (url, headers, body, timeoutMs) => {
      const r = await egress.fetch(url, { method: "POST", headers, body, timeoutMs, maxBytes: 1 << 20, maxRedirects: 0 });
      return { status: r.status };
    },
  });
  const dispatcher = new Dispatcher({
    store,
    mms,
    sms,
    media,
    log,
    metrics,
    concurrency: { mms: config.carriers.mms.concurrency, sms: config.carriers.sms.concurrency },
    claimBatch: config.delivery.claim_batch,
    paused: config.delivery.paused,
    onFinal: () => outbox.wake(),
  });
  const events = carrierEvents({
    store,
    accounts: config.accounts,
    log,
    metrics,
    onChange: () => {
      outbox.wake();
      dispatcher.wake("sms");
    },
  });
  for (const carrier of [mms, sms]) {
    await carrier.start(events);
    carrier.resume?.(store.openCarrierIds(carrier.name));
  }

  let shuttingDown = false;
  const http = new Elysia()
    .use(
      channelApi({
        config,
        store,
        log,
        metrics,
        now,
        onAccepted: (channel) => dispatcher.wake(channel),
        shuttingDown: () => shuttingDown,
      }),
    )
    .use(carrierInbound(config.inbound.mm7.path, (req) => (mm7Inbound ? mm7Inbound.handleInbound(req) : Promise.resolve(new Response("no MM7 carrier is configured\n", { status: 404 })))))
    .use(
      ops({
        metrics,
        storageWritable: () => store.writer.healthy,
        carriers: () => [...mms.health(), ...sms.health()],
        shuttingDown: () => shuttingDown,
        refreshGauges: () => {
          metrics.queueDepth.reset();
          metrics.queueOldest.reset();
          for (const q of store.queueStats()) {
            metrics.queueDepth.set({ state: q.state, channel: q.channel }, q.count);
            if (q.oldest !== null) metrics.queueOldest.set({ state: q.state, channel: q.channel }, (now() - q.oldest) / 1000);
          }
          metrics.outboxDepth.reset();
          for (const e of store.eventStats()) metrics.outboxDepth.set({ state: e.state }, e.count);
        },
      }),
    );

  const [host, portText] = splitHostPort(config.server.listen);
  http.listen({ hostname: host, port: Number(portText), maxRequestBodySize: config.server.max_body_bytes + 65536 });
  const server = http.server!;

  if (config.delivery.paused) log.warn("delivery.paused is set: messages are accepted and queued, nothing is submitted");
  dispatcher.start();
  outbox.start();
  let lastPurge = 0;
  const housekeeping = setInterval(async () => {
    try {
      if (await store.expireReceiptWindows(1000)) outbox.wake();
      for (const r of await store.dropStaleEarlyReceipts(config.delivery.early_receipt_hold_s * 1000)) {
        log.warn({ carrier: r.carrier, carrierId: r.carrier_id }, "receipt for an id that never became known; dropped after the hold time");
      }
      if (now() - lastPurge > 3_600_000) {
        lastPurge = now();
        const purged = await store.purge(now() - config.store.dedup_window_hours * 3_600_000, now() - config.store.retention_hours * 3_600_000);
        log.info(purged, "purged old records");
      }
    } catch (e) {
      log.error({ err: (e as Error).message }, "housekeeping failed");
    }
  }, 1000);

  const url = `http://${host.includes(":") ? `[${host}]` : host}:${server.port}`;
  log.info({ url, mms: mms.name, sms: sms.name }, "gateway listening");

  let stopping: Promise<void> | null = null;
  return {
    url,
    port: server.port!,
    store,
    metrics,
    log,
    stop() {
      stopping ??= (async () => {
        shuttingDown = true;
        clearInterval(housekeeping);
        const deadline = config.server.shutdown_deadline_ms;
        await dispatcher.stop(deadline);
        await Promise.all([mms.stop(deadline), sms.stop(deadline)]);
        await outbox.stop(Math.min(deadline, 2000));
        await server.stop(false);
        store.close();
        log.info("gateway stopped");
      })();
      return stopping;
    },
  };
}

export function splitHostPort(listen: string): [string, string] {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(listen);
  if (!m) throw new Error(`bad listen address ${listen}`);
  return [m[1]!, m[2]!];
}
