// Webhooks from two nodes on one PostgreSQL to one real loopback sink: one batch per (account, URL) in
// flight at a time across the cluster, and each message's events in order, whichever node sends them.
import { afterAll, expect, test } from "bun:test";
import pino from "pino";
import { durations } from "../../src/config.ts";
import { createMetrics } from "../../src/observe/metrics.ts";
import { Outbox } from "../../src/pipeline/outbox.ts";
import { PostgresStore } from "../../src/store/postgres/store.ts";
import { ACME_SECRET, tempDir, testConfig, waitFor } from "../support/app.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";
import { startSink } from "../support/sink.ts";

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
}, 30_000);

test.skipIf(!pgAvailable)("two nodes' outboxes: at most one POST in flight per URL, events of a message in order", async () => {
  const db: TestDatabase = await createTestDatabase();
  cleanup.push(() => db.drop());
  const sink = startSink(ACME_SECRET);
  cleanup.push(async () => sink.stop());
  // Slow answers, so a second batch for a URL would overlap the first if anything let it start.
  sink.delayMs = 20;
  const base = sink.url.replace(/\/callback$/, "");
  const urls = [`${base}/u1`, `${base}/u2`];

  // The sink checks the JWT's iat against its own clock: real time.
  const options = { now: Date.now, retryBaseMs: 1000, retryMaxMs: 60_000, receiptWindowMs: 3_600_000, intermediateEvents: true, inFlightPolicy: "at-most-once" as const };
  const stores = await Promise.all(["node-a", "node-b"].map((nodeId) => PostgresStore.open({ ...options, url: db.url, nodeId, poolSize: 4 })));
  cleanup.push(async () => void (await Promise.all(stores.map((s) => s.close()))));

  // 30 messages over two URLs, each with two events: `sent` (the carrier took it), then `delivered`.
  const n = 30;
  for (let i = 0; i < n; i++) {
    const payload = { from: "1", to: "12025550123", subject: "", text: `m${i}`, fallback_text: "", media: [], custom_data: `${i}`, callback_url: urls[i % 2]!, metadata: null };
    await stores[0]!.accept({ accountId: "acme", requestId: `r${i}`, channel: "sms", payload, bodyHash: "h", expiresAt: Date.now() + 3_600_000 });
  }
  const claimed = await stores[0]!.claimDue("sms", n);
  expect(claimed).toHaveLength(n);
  for (const [i, m] of claimed.entries()) {
    await stores[0]!.recordSubmit(m, "sms", { kind: "ok", carrierMessageIds: [`c${i}`] });
    expect(await stores[0]!.applyReceipt({ carrier: "sms", carrierMessageId: `c${i}`, outcome: "delivered", timestamp: Date.now() })).toBe("applied");
  }

  const settings = { ...testConfig(tempDir()).webhooks, batch_max_events: 3, batch_max_wait_ms: 0, concurrency: 4 };
  const outboxes = stores.map(
    (store) =>
      new Outbox({
        store,
        secrets: new Map([["acme", ACME_SECRET]]),
        log: pino({ level: "silent" }),
        metrics: createMetrics(),
        now: Date.now,
        isRefusal: () => false,
        maxAgeMs: durations(testConfig(tempDir())).webhookMaxAgeMs,
        settings,
        post: async (url, headers, body, timeoutMs) => ({ status: (await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(timeoutMs) })).status }),
      }),
  );
  cleanup.push(async () => void (await Promise.all(outboxes.map((o) => o.stop(5000)))));
  for (const o of outboxes) o.start();

  await waitFor("every event at the sink", () => sink.events.length === 2 * n, 30_000);
  expect(sink.badTokens).toBe(0);
  expect(Object.fromEntries(sink.maxInFlight)).toEqual({ "/u1": 1, "/u2": 1 });
  for (const m of claimed) expect(sink.byMessage(m.id).map((e) => e.status)).toEqual(["sent", "delivered"]);
  expect(sink.posts).toBeGreaterThanOrEqual((2 * n) / settings.batch_max_events);
}, 60_000);
