// The composition root: opens the store, builds the carriers and the three loops (HTTP, dispatcher,
// outbox), and wires them. Nothing else creates long-lived objects.
import { readFileSync } from "node:fs";
import { Elysia } from "elysia";
import pino, { type DestinationStream, type Logger } from "pino";
import pkg from "../package.json" with { type: "json" };
import type { Logger as AdapterLogger, MmsCarrier, SmsCarrier } from "../adapters/carrier.ts";
import { createSandboxCarrier } from "../adapters/sandbox/index.ts";
import { createMm7Carrier, inboundLimit, type Mm7Carrier } from "../adapters/mm7/index.ts";
import { createSmppCarrier } from "../adapters/smpp/index.ts";
import { Activity } from "./activity.ts";
import { mm7Settings, nodeId, smppSettings, type Config } from "./config.ts";
import { admin } from "./http/admin.ts";
import { adminGuard } from "./http/admin-auth.ts";
import { GuessingGuard } from "./http/auth.ts";
import { carrierInbound } from "./http/carrier-inbound.ts";
import { channelApi } from "./http/channel-api.ts";
import { openApi } from "./http/openapi.ts";
import { liveness, ops } from "./http/ops.ts";
import { statusPage } from "./http/status-page.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { Dispatcher } from "./pipeline/dispatcher.ts";
import { createEgress, EgressRefused } from "./pipeline/egress.ts";
import { createMediaFetcher } from "./pipeline/media.ts";
import { createMediaServices } from "./pipeline/media-services.ts";
import { mediaPage } from "./http/media-page.ts";
import { Outbox } from "./pipeline/outbox.ts";
import { carrierEvents } from "./pipeline/receipts.ts";
import type { Store } from "./store/index.ts";
import { openStore, type WalSync } from "./store/open.ts";

export interface AppOptions {
  /** A ready logger (its warnings do not reach the status page's error list). */
  log?: Logger;
  /** Where the app's own logger writes (default stdout); ignored when `log` is given. */
  logDestination?: DestinationStream;
  now?: () => number;
  /** How the WAL is fsynced (default fdatasync): tests hold it to see that nothing is told before it. */
  walSync?: WalSync;
}

export interface App {
  url: string;
  port: number;
  /** Where /mm7, /metrics, /readyz and /healthz are served: `url` unless inbound.listen is set. */
  carrierUrl: string;
  store: Store;
  metrics: Metrics;
  activity: Activity;
  log: Logger;
  /** Re-reads server.tls_cert / tls_key and serves new connections with them (SIGHUP). */
  reloadTls(): "reloaded" | "no tls configured";
  /** Graceful: stop intake, finish in-flight work within the deadline, flush, close the database. */
  stop(): Promise<void>;
}

/** The JSON logger; warnings and errors are also kept by `activity` for the status page. */
// Synchronous stdout: the lines just before process.exit() (shutdown, second signal) must not be lost.
export function createLogger(config: Config, activity?: Activity, destination: DestinationStream = pino.destination({ dest: 1, sync: true })): Logger {
  const streams: pino.StreamEntry[] = [{ level: config.log.level === "silent" ? "fatal" : (config.log.level as pino.Level), stream: destination }];
  if (activity) streams.push({ level: "warn", stream: activity.errorStream() });
  return pino(
    {
      level: config.log.level,
      base: undefined,
      redact: { paths: ["password", "*.password", "callback_secret", "*.callback_secret", "headers.authorization"], censor: "<redacted>" },
    },
    pino.multistream(streams),
  );
}

function readTls(config: Config): { cert: string; key: string } | null {
  if (!config.server.tls_cert) return null;
  return { cert: readFileSync(config.server.tls_cert, "utf8"), key: readFileSync(config.server.tls_key, "utf8") };
}

/**
 * An adapter's logger: every line names its carrier, once (the adapters name it on most lines
 * themselves; a pino child would write the key twice).
 */
function carrierLog(log: Logger, carrier: string): AdapterLogger {
  const at =
    (level: "debug" | "info" | "warn" | "error") =>
    (obj: object, msg?: string): void => {
      if (log.isLevelEnabled(level)) log[level]({ carrier, ...obj }, msg);
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

function createCarriers(config: Config, log: Logger, now: () => number): { mms: MmsCarrier; sms: SmsCarrier; mm7Inbound: Mm7Carrier | null } {
  const { mms, sms } = config.carriers;
  const mm7 = mms.kind === "mm7" ? createMm7Carrier(mm7Settings(config), { log: carrierLog(log, mms.name), now }) : null;
  return {
    mms: mm7 ?? createSandboxCarrier({ name: mms.name, channel: "mms", reportDelayMs: mms.sandbox_report_delay_ms, now, maxMessageBytes: mms.max_message_bytes }),
    sms:
      sms.kind === "smpp"
        ? createSmppCarrier(sms.name, smppSettings(config), { log: carrierLog(log, sms.name), now })
        : createSandboxCarrier({ name: sms.name, channel: "sms", reportDelayMs: sms.sandbox_report_delay_ms, now }),
    mm7Inbound: mm7,
  };
}

export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const now = options.now ?? Date.now;
  const activity = new Activity(now);
  const log = options.log ?? createLogger(config, activity, options.logDestination);
  const metrics = createMetrics();
  const store = await openStore(config.store, nodeId(config), {
    onOutcome: (o) => {
      if (o.kind === "fallback") return metrics.fallbacks.inc();
      metrics.finals.inc({ status: o.status });
      activity.final();
    },
    now,
    retryBaseMs: config.delivery.retry_base_ms,
    retryMaxMs: config.delivery.retry_max_ms,
    receiptWindowMs: config.delivery.receipt_window_hours * 3_600_000,
    intermediateEvents: config.delivery.intermediate_events,
    inFlightPolicy: config.delivery.in_flight_policy,
    noMmsMemoryMs: config.capability.remember_days * 86_400_000,
    backgroundCheckpoints: true,
    walSync: options.walSync,
    onDurabilityLost: (e) => {
      // Committed data may be missing on disk, and the writer already refuses every write (503): stop now
      // and let the next start recover from what the disk holds.
      log.fatal({ err: (e as Error)?.message ?? String(e) }, "fsync of the database failed; exiting so a restart recovers from what is on disk");
      setTimeout(() => process.exit(70), 100);
    },
  });
  const recovered = await store.recoverInFlight();
  if (recovered > 0) log.warn({ count: recovered, policy: config.delivery.in_flight_policy }, "messages were in flight when the gateway stopped");

  metrics.validity.set(config.delivery.validity_hours * 3600);
  metrics.startTime.set(now() / 1000);
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
  const mediaServices = createMediaServices({ config, store, mms, fetcher: media, metrics, now, warn: (o, m) => log.warn(o, m), info: (o, m) => log.info(o, m) });
  const { capability, links } = mediaServices;

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
    onSubmitted: (carrier, outcome) => activity.submitted(carrier, outcome),
    ...mediaServices.dispatcherHooks,
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
  // Work another node made due (PostgreSQL): a hint that saves waiting for the next poll.
  store.watch((kind) => (kind === "events" ? outbox.wake() : dispatcher.wake(kind)));
  for (const carrier of [mms, sms]) {
    await carrier.start(events);
    carrier.resume?.(await store.openCarrierIds(carrier.name));
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
        onAccepted: (channel) => {
          activity.accepted();
          dispatcher.wake(channel);
        },
        checkEgress: (url) => egress.checkLiteral(url),
        shuttingDown: () => shuttingDown,
      }),
    )
    .use(openApi({ version: pkg.version, limits: config.limits, maxBodyBytes: config.server.max_body_bytes }));
  // The carrier and monitoring side: on its own listener when inbound.listen is set, else on the main one.
  const carrierSide = new Elysia()
    .use(
      carrierInbound(
        config.inbound.mm7.path,
        (req) => (mm7Inbound ? mm7Inbound.handleInbound(req) : Promise.resolve(new Response("no MM7 carrier is configured\n", { status: 404 }))),
        new GuessingGuard(config.server.auth_failures_per_minute, now),
        config.server.retry_after_s,
      ),
    )
    .use(
      ops({
        metrics,
        storageWritable: () => store.healthy(),
        carriers: () => [...mms.health(), ...sms.health()],
        shuttingDown: () => shuttingDown,
        refreshGauges: async () => {
          // A store that cannot be read (PostgreSQL away) keeps the last figures: /metrics still answers,
          // and gateway_ready says why they are stale.
          const [queue, events] = await Promise.all([store.queueStats(), store.eventStats()]).catch(() => [null, null]);
          if (!queue || !events) return;
          metrics.queueDepth.reset();
          metrics.queueOldest.reset();
          for (const q of queue) {
            metrics.queueDepth.set({ state: q.state, channel: q.channel }, q.count);
            if (q.oldest !== null) metrics.queueOldest.set({ state: q.state, channel: q.channel }, (now() - q.oldest) / 1000);
          }
          metrics.outboxDepth.reset();
          for (const e of events) metrics.outboxDepth.set({ state: e.state }, e.count);
        },
      }),
    );
  if (config.inbound.listen) http.use(liveness());
  else http.use(carrierSide);

  const refuse = adminGuard(config.admin.token, now);
  http
    .use(
      admin({
        store,
        log,
        now,
        refuse,
        validityMs: config.delivery.validity_hours * 3_600_000,
        dedupWindowHours: config.store.dedup_window_hours,
        onRequeued: () => outbox.wake(0),
        onRetried: () => {
          dispatcher.wake("mms");
          dispatcher.wake("sms");
        },
        capability,
      }),
    )
    .use(links ? mediaPage(links) : new Elysia())
    .use(statusPage({ store, activity, now, refuse, carriers: () => [...mms.health(), ...sms.health()], carrierNames: [mms.name, sms.name], version: pkg.version }));

  const [host, portText] = splitHostPort(config.server.listen);
  // Bun's own cap only guards memory: each handler enforces its limit first and answers 413 with a
  // body that says so (the Channel API's max_body_bytes, the MM7 inbound limit for MO MMS).
  const ownLimit = Math.max(config.server.max_body_bytes, config.carriers.mms.kind === "mm7" ? inboundLimit(mm7Settings(config)) : 0);
  const listenOptions = { hostname: host, maxRequestBodySize: 2 * ownLimit + (1 << 20) };
  const tls = readTls(config);
  http.listen({ ...listenOptions, port: Number(portText), ...(tls ? { tls } : {}) });
  let server = http.server!;
  let carrierUrl: string | null = null;
  if (config.inbound.listen) {
    const [inboundHost, inboundPort] = splitHostPort(config.inbound.listen);
    carrierSide.listen({ hostname: inboundHost, port: Number(inboundPort), maxRequestBodySize: listenOptions.maxRequestBodySize });
    carrierUrl = `http://${inboundHost.includes(":") ? `[${inboundHost}]` : inboundHost}:${carrierSide.server!.port}`;
  }

  if (config.delivery.paused) log.warn("delivery.paused is set: messages are accepted and queued, nothing is submitted");
  dispatcher.start();
  outbox.start();
  let lastPurge = 0;
  let housekeepingRunning = false;
  const housekeeping = setInterval(async () => {
    // A pass that takes longer than the interval (a big purge) is not started twice.
    if (housekeepingRunning) return;
    housekeepingRunning = true;
    try {
      if (await store.expireReceiptWindows(1000)) outbox.wake();
      for (const r of await store.dropStaleEarlyReceipts(config.delivery.early_receipt_hold_s * 1000)) {
        log.warn({ carrier: r.carrier, carrierId: r.carrier_id }, "receipt for an id that never became known; dropped after the hold time");
      }
      if (now() - lastPurge > 60_000) {
        lastPurge = now();
        const purged = await store.purge(now() - config.store.dedup_window_hours * 3_600_000, now() - config.store.retention_hours * 3_600_000);
        if (purged.dedup + purged.messages + purged.events > 0) log.info(purged, "purged old records");
        const media = await mediaServices.purge();
        if (media.links + media.capability + media.adapted > 0) log.info(media, "purged expired media pages, capability memories and unused adaptations");
      }
    } catch (e) {
      log.error({ err: (e as Error).message }, "housekeeping failed");
    } finally {
      housekeepingRunning = false;
    }
  }, 1000);

  const url = `${tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${server.port}`;
  log.info({ url, ...(carrierUrl ? { carrierUrl } : {}), mms: mms.name, sms: sms.name }, "gateway listening");

  let stopping: Promise<void> | null = null;
  return {
    url,
    port: server.port!,
    carrierUrl: carrierUrl ?? url,
    store,
    metrics,
    activity,
    log,
    reloadTls() {
      // Bun 1.4's server.reload() keeps the old certificate, so a new listener takes the port (Elysia
      // listens with SO_REUSEPORT, so both hold it for a moment) and the old one finishes the requests
      // it has. Unreadable or invalid files throw here and the old listener keeps serving.
      const fresh = readTls(config);
      if (!fresh) return "no tls configured";
      const old = server;
      http.listen({ ...listenOptions, port: old.port!, tls: fresh });
      server = http.server!;
      void old.stop(false);
      log.info({ cert: config.server.tls_cert }, "TLS certificate reloaded");
      return "reloaded";
    },
    stop() {
      stopping ??= (async () => {
        shuttingDown = true;
        clearInterval(housekeeping);
        const deadline = config.server.shutdown_deadline_ms;
        await dispatcher.stop(deadline);
        await Promise.all([mms.stop(deadline), sms.stop(deadline)]);
        await outbox.stop(Math.min(deadline, 2000));
        await server.stop(false);
        if (carrierUrl) await carrierSide.server!.stop(false);
        await store.close();
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
