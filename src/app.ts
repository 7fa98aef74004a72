// The composition root: opens the store, builds the carriers, the three loops (HTTP, dispatcher, outbox)
// and housekeeping, and wires them. Nothing else creates long-lived objects.
import { dirname, join } from "node:path";
import { readFileSync } from "node:fs";
import { Elysia } from "elysia";
import type { DestinationStream, Logger } from "pino";
import pkg from "../package.json" with { type: "json" };
import type { BindLeases } from "../adapters/carrier.ts";
import { inboundLimit } from "../adapters/mm7/index.ts";
import { Activity } from "./observe/activity.ts";
import { carrierEntries, durations, mm7Settings, nodeId, storeOptions, type Config } from "./config.ts";
import { admin } from "./admin/http.ts";
import { adminGuard } from "./admin/auth.ts";
import { Authenticator, GuessingGuard } from "./http/auth.ts";
import { carrierInbound } from "./http/carrier-inbound.ts";
import { channelApi } from "./http/channel-api.ts";
import { openApi } from "./http/openapi.ts";
import { liveness, ops } from "./http/ops.ts";
import { statusPage } from "./http/status-page.ts";
import { createLogger } from "./observe/log.ts";
import { createMetrics, refreshGauges, type Metrics } from "./observe/metrics.ts";
import { RouteTable } from "./domain/route.ts";
import { CarrierSet } from "./pipeline/carriers.ts";
import { Dispatcher } from "./pipeline/dispatcher.ts";
import { Housekeeping } from "./pipeline/housekeeping.ts";
import { Router } from "./pipeline/router.ts";
import { createEgress, EgressRefused } from "./egress/fetch.ts";
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
  /** The dispatcher's idle poll (default one second): a test sets it out of reach so only wakes drive it. */
  dispatcherPollMs?: number;
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
  /**
   * SIGHUP: takes the carriers, routes and accounts of a re-read file. Unchanged carriers keep their binds
   * and in-flight work; new ones start; changed ones are replaced and removed ones drain (in-flight submits
   * finish within the shutdown deadline or are handed back). The returned lines say what changed.
   */
  reloadRouting(next: Config): Promise<string[]>;
  /** Re-reads server.tls_cert / tls_key and serves new connections with them (SIGHUP). */
  reloadTls(): "reloaded" | "no tls configured";
  /** Graceful: stop intake, finish in-flight work within the deadline, flush, close the database. */
  stop(): Promise<void>;
}

function readTls(config: Config): { cert: string; key: string } | null {
  if (!config.server.tls_cert) return null;
  return { cert: readFileSync(config.server.tls_cert, "utf8"), key: readFileSync(config.server.tls_key, "utf8") };
}

export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const now = options.now ?? Date.now;
  const activity = new Activity(now);
  const log = options.log ?? createLogger(config, activity, options.logDestination);
  const metrics = createMetrics();
  const ms = durations(config);
  const store = await openStore(config.store, nodeId(config), {
    ...storeOptions(config, now),
    onOutcome: (o) => {
      if (o.kind === "fallback") return metrics.fallbacks.inc();
      metrics.finals.inc({ status: o.status });
      activity.final();
    },
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

  metrics.validity.set(ms.validityMs / 1000);
  metrics.startTime.set(now() / 1000);
  const egress = createEgress({ allow: config.egress.allow });
  const mediaTmp = join(dirname(config.store.path), "media-tmp"); // large sources, ffmpeg's files: not the shared /tmp
  const media = createMediaFetcher({
    egress,
    maxBytes: config.media.max_bytes,
    timeoutMs: config.media.timeout_ms,
    maxRedirects: config.media.max_redirects,
    cacheEntries: config.media.cache_entries,
    cacheTtlMs: 3_600_000,
    spoolDir: join(mediaTmp, "fetch"),
    now,
    warn: (o, m) => log.warn(o, m),
  });
  // An SMSC's bind limit holds for the cluster: each bind is a slot leased in the store (one node: all of them).
  const binds = (c: string): BindLeases => ({ renewEveryMs: Math.floor(config.node.lease_ms / 3), hold: (n) => store.holdBinds(c, n), release: (s) => store.releaseBinds(c, s) });
  const carrierSet = new CarrierSet(config, { log, now, binds, openCarrierIds: (name) => store.openCarrierIds(name) });
  const { built, byName: carriers } = carrierSet;
  // Routes name carriers by their table key; the store and receipts know them by name.
  const routeTable = (c: Config) => {
    const nameOf = new Map(carrierEntries(c).map((e) => [e.key, e.section.name]));
    return new RouteTable(
      c.routes.map((r) => ({ ...r, carriers: r.carriers.map((k) => nameOf.get(k)!) })),
      { mms: c.carriers.mms.name, sms: c.carriers.sms.name },
    );
  };
  const router = new Router({
    routes: routeTable(config),
    state: (name) => carriers.get(name)?.carrier.submitState(),
    standby: (name) => carriers.get(name)?.carrier.standby?.() ?? false,
    failAfterErrors: config.delivery.failover_after_errors,
    probeMs: config.delivery.failover_probe_ms,
    now,
    onFailover: (from, to) => metrics.failovers.inc({ carrier: from, to }),
  });
  const mediaServices = createMediaServices({ config, store, fetcher: media, metrics, now, tmpDir: join(mediaTmp, "convert"), warn: (o, m) => log.warn(o, m), info: (o, m) => log.info(o, m) });
  // What the status page and /readyz show: each link, whether routes are passing its carrier over, and
  // whether its media cannot all be adapted (ffmpeg missing) — a note, not a reason to be unready.
  const allHealth = () =>
    built.flatMap((b) => {
      const notes = [router.skipped(b.carrier.name) ? `routes skip ${b.carrier.name} for now` : null, mediaServices.converterMissing(b.carrier)].filter((n) => n !== null);
      return b.carrier.health().map((h) => (notes.length > 0 ? { ...h, detail: [h.detail, ...notes].join("; ") } : h));
    });
  const concurrency = { mms: carrierSet.concurrency("mms"), sms: carrierSet.concurrency("sms") };
  // Read per request (Channel API) or per MO: one snapshot at a time, swapped whole by SIGHUP.
  let accounts = { list: config.accounts, auth: new Authenticator(config.accounts) };
  const { capability, links } = mediaServices;

  const outbox = new Outbox({
    store,
    log,
    metrics,
    now,
    secrets: new Map(config.accounts.map((a) => [a.id, a.callback_secret])),
    isRefusal: (e) => e instanceof EgressRefused,
    maxAgeMs: ms.webhookMaxAgeMs,
    settings: config.webhooks,
    post: async (url, headers, body, timeoutMs) => {
      const r = await egress.fetch(url, { method: "POST", headers, body, timeoutMs, maxBytes: 1 << 20, maxRedirects: 0 });
      return { status: r.status };
    },
  });
  const dispatcher = new Dispatcher({
    store,
    carriers,
    router,
    media,
    log,
    metrics,
    concurrency,
    claimBatch: config.delivery.claim_batch,
    pollMs: options.dispatcherPollMs,
    paused: config.delivery.paused,
    onFinal: () => outbox.wake(),
    onSubmitted: (carrier, outcome) => activity.submitted(carrier, outcome),
    ...mediaServices.dispatcherHooks,
  });
  const events = carrierEvents({
    store,
    accounts: () => accounts.list,
    log,
    metrics,
    onChange: (mayFallBack) => {
      outbox.wake();
      if (mayFallBack) dispatcher.wake("sms");
    },
  });
  // Work another node made due (PostgreSQL): a hint that saves waiting for the next poll.
  store.watch((kind) => (kind === "events" ? outbox.wake() : dispatcher.wake(kind)));
  await carrierSet.start(events);

  let shuttingDown = false;
  const http = new Elysia()
    .use(
      channelApi({
        config,
        store,
        log,
        metrics,
        now,
        onAccepting: store.writesInOrder ? (channel) => dispatcher.wake(channel) : undefined,
        onAccepted: (channel) => {
          activity.accepted();
          if (!store.writesInOrder) dispatcher.wake(channel);
        },
        validityMs: ms.validityMs,
        checkEgress: (url) => egress.checkLiteral(url),
        shuttingDown: () => shuttingDown,
        accounts: () => accounts.auth,
      }),
    )
    .use(openApi({ version: pkg.version, limits: config.limits, maxBodyBytes: config.server.max_body_bytes }));
  // The carrier and monitoring side: on its own listener when inbound.listen is set, else on the main one.
  const guessing = new GuessingGuard(config.server.auth_failures_per_minute, now);
  const carrierSide = new Elysia();
  const inboundPath = config.inbound.mm7.path;
  carrierSide.use(
    carrierInbound(
      inboundPath,
      (req, key) => carrierSet.mm7(key)?.handleInbound(req) ?? Promise.resolve(new Response("no MM7 carrier is configured here\n", { status: 404 })),
      guessing,
      config.server.retry_after_s,
    ),
  );
  carrierSide
    .use(
      ops({
        metrics,
        storageWritable: () => store.healthy(),
        carriers: allHealth,
        backupGroups: () => router.backupGroups(),
        shuttingDown: () => shuttingDown,
        refreshGauges: () => refreshGauges({ metrics, store, now, carriers: () => built.map((b) => b.carrier.name), skipped: (name) => router.skipped(name) }),
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
        validityMs: ms.validityMs,
        dedupWindowMs: ms.dedupWindowMs,
        onRequeued: () => outbox.wake(0),
        onRetried: () => {
          dispatcher.wake("mms");
          dispatcher.wake("sms");
        },
        capability,
      }),
    )
    .use(links ? mediaPage(links) : new Elysia())
    .use(statusPage({ store, activity, now, refuse, carriers: allHealth, carrierNames: () => built.map((b) => b.carrier.name), version: pkg.version }));

  const [host, portText] = splitHostPort(config.server.listen);
  // Bun's own cap only guards memory: each handler enforces its limit first and answers 413 with a
  // body that says so (the Channel API's max_body_bytes, the MM7 inbound limit for MO MMS).
  const ownLimit = Math.max(config.server.max_body_bytes, ...built.filter((b) => b.mm7).map((b) => inboundLimit(mm7Settings(config, b.key))));
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
  const housekeeping = new Housekeeping({
    store,
    log,
    now,
    settings: ms,
    onEvents: () => outbox.wake(),
    purgeMedia: () => mediaServices.purge(),
  });
  housekeeping.start();

  const url = `${tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${server.port}`;
  log.info({ url, ...(carrierUrl ? { carrierUrl } : {}), carriers: built.map((b) => `${b.carrier.name} (${b.channel})`) }, "gateway listening");

  let reloading: Promise<unknown> = Promise.resolve();
  async function reload(next: Config): Promise<string[]> {
    const { said, drained } = await carrierSet.reload(next, config.server.shutdown_deadline_ms);
    if (next.inbound.mm7.path !== config.inbound.mm7.path) said.push("inbound.mm7.path changed: not applied (needs a restart)");
    if (JSON.stringify(next.accounts) !== JSON.stringify(config.accounts)) {
      // One assignment: a request already authenticated keeps the account object it was given.
      accounts = { list: next.accounts, auth: new Authenticator(next.accounts) };
      outbox.setSecrets(new Map(next.accounts.map((a) => [a.id, a.callback_secret])));
      said.push("accounts reloaded");
    }
    // Read at each use (media adaptation, routes): the file as it is now.
    config.carriers = next.carriers;
    config.inbound = { ...next.inbound, mm7: { ...next.inbound.mm7, path: config.inbound.mm7.path } };
    config.accounts = next.accounts;
    config.routes = next.routes;
    config.media_link = next.media_link;
    router.setRoutes(routeTable(config));
    concurrency.mms = carrierSet.concurrency("mms");
    concurrency.sms = carrierSet.concurrency("sms");
    dispatcher.wake("mms");
    dispatcher.wake("sms");
    log.info({ signal: "SIGHUP", changes: said }, said.length ? "carriers, routes and accounts reloaded" : "carriers, routes and accounts unchanged");
    await drained;
    if (said.some((l) => / (changed|removed)/.test(l))) log.info({ signal: "SIGHUP" }, "replaced and removed carriers drained");
    return said;
  }

  let stopping: Promise<void> | null = null;
  return {
    url,
    port: server.port!,
    carrierUrl: carrierUrl ?? url,
    store,
    metrics,
    activity,
    log,
    reloadRouting(next: Config) {
      // Two SIGHUPs in a row: the second reload starts from what the first left, never beside it.
      const run = reloading.then(() => reload(next));
      reloading = run.catch(() => {});
      return run;
    },
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
        housekeeping.stop();
        const deadline = config.server.shutdown_deadline_ms;
        await dispatcher.stop(deadline);
        await carrierSet.stop(deadline);
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
