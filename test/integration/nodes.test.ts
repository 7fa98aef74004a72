// The nodes sharing a store, on the status page and in /metrics: SQLite is one node; on PostgreSQL
// every node lists the whole cluster, and one that stops beating shows as silent on the others.
import { afterAll, expect, test } from "bun:test";
import pino from "pino";
import { startApp, type App } from "../../src/app.ts";
import { startTestApp, tempDir, testConfig, waitFor } from "../support/app.ts";
import { scrape } from "../support/metrics.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
}, 30_000);

const token = "nodes-test-token";
const statusPage = (app: App) => fetch(`${app.url}/status`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.text());
/** The state cell of each node on the page. */
const nodeStates = (page: string) => Object.fromEntries([...page.matchAll(/data-k="node:([^"]+)">(\w+)</g)].map((m) => [m[1], m[2]]));

test("SQLite: the one node, up, on the status page and in /metrics", async () => {
  const app = await startTestApp({ node: { id: "solo" }, admin: { token } });
  cleanup.push(() => app.stop());
  const m = await scrape(app.url);
  expect(m.get("gateway_node_up", { node: "solo" })).toBe(1);
  expect(m.get("gateway_node_last_heartbeat_seconds", { node: "solo" })).toBeGreaterThan(0);
  expect(m.text.match(/^gateway_node_up\{/gm)).toHaveLength(1);
  expect(nodeStates(await statusPage(app))).toEqual({ solo: "up" });
});

test.skipIf(!pgAvailable)("PostgreSQL: each node lists both; a stopped node turns silent once its lease would have run out", async () => {
  const db: TestDatabase = await createTestDatabase();
  cleanup.push(() => db.drop());
  // Node a's clock can jump past a lease (a mocked clock; its heartbeats write the same clock).
  let skew = 0;
  const start = (id: string, now?: () => number) =>
    startApp(testConfig(tempDir(), { store: { kind: "postgres", url: db.url }, node: { id }, admin: { token } }), { log: pino({ level: "silent" }), now });
  const a = await start("gw-a", () => Date.now() + skew);
  cleanup.push(() => a.stop());
  const b = await start("gw-b");
  let bStopped = false;
  cleanup.push(() => (bStopped ? Promise.resolve() : b.stop()));

  for (const app of [a, b]) {
    const m = await scrape(app.url);
    expect(m.get("gateway_node_up", { node: "gw-a" })).toBe(1);
    expect(m.get("gateway_node_up", { node: "gw-b" })).toBe(1);
    expect(m.get("gateway_node_last_heartbeat_seconds", { node: "gw-b" })).toBeGreaterThan(0);
    expect(nodeStates(await statusPage(app))).toEqual({ "gw-a": "up", "gw-b": "up" });
  }

  await b.stop();
  bStopped = true;
  skew = 11_000; // past the 10 s lease: b's last heartbeat is now too old, a beats again on its own
  const m = await waitFor("gw-b silent, gw-a up", async () => {
    const s = await scrape(a.url);
    return s.get("gateway_node_up", { node: "gw-b" }) === 0 && s.get("gateway_node_up", { node: "gw-a" }) === 1 && s;
  });
  expect(m.text.match(/^gateway_node_up\{/gm)).toHaveLength(2);
  expect(nodeStates(await statusPage(a))).toEqual({ "gw-a": "up", "gw-b": "silent" });
}, 60_000);
