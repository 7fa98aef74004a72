// The Grafana dashboard and the Prometheus alert rules: every metric their expressions name is one a
// running gateway exposes on /metrics (after real traffic), and promtool accepts and unit-tests the rules.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ACME_SECRET, post, sendBody, startTestApp, waitFor } from "../support/app.ts";
import { startSink } from "../support/sink.ts";

const dir = join(import.meta.dir, "../../packaging");
const dashboard = JSON.parse(readFileSync(join(dir, "grafana/mms-gateway.json"), "utf8"));
const alertsText = readFileSync(join(dir, "prometheus/alerts.yml"), "utf8");

const hasPromtool = Bun.spawnSync(["sh", "-c", "command -v promtool"]).exitCode === 0;
// Locally a machine without promtool skips (saying so); in CI a missing promtool is a failure.
if (!hasPromtool && !process.env.CI) console.warn("monitoring.test.ts: SKIPPED the promtool checks — apt-get install -y prometheus");

const keywords = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "inf", "nan"]);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, "") // strings
    .replace(/\{[^}]*\}/g, "") // label matchers (and Grafana's $instance inside them)
    .replace(/\[[^\]]*\]/g, "") // ranges, $__rate_interval
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ""); // label lists
  return [...bare.matchAll(/[A-Za-z_:][\w:]*(?!\w*\s*\()/g)].map((m) => m[0]).filter((n) => !keywords.has(n.toLowerCase()) && !/\(/.test(n));
}

function dashboardExprs(): { panel: string; expr: string }[] {
  const out: { panel: string; expr: string }[] = [];
  for (const p of dashboard.panels) for (const t of p.targets ?? []) out.push({ panel: p.title, expr: t.expr });
  for (const v of dashboard.templating.list) if (v.type === "query") out.push({ panel: `variable ${v.name}`, expr: v.definition.replace(/^label_values\((\w+),.*$/, "$1") });
  return out;
}

const alertExprs = [...alertsText.matchAll(/^\s+expr: (\|\n((?:\s{10}.*\n)+)|(.*)\n)/gm)].map((m) => (m[2] ?? m[3]!).trim());

let exposed: Set<string>;
const sink = startSink(ACME_SECRET);
let app: Awaited<ReturnType<typeof startTestApp>>;

beforeAll(async () => {
  app = await startTestApp();
  // Real traffic first, so the labelled series exist too (a counter that never moved has none).
  const r = await post(app.url, "/mms", sendBody({ callback_url: sink.url }));
  await waitFor("event delivered", () => sink.byMessage(r.json.id).length > 0);
  const text = await (await fetch(`${app.url}/metrics`)).text();
  exposed = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    exposed.add(name!);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) exposed.add(name + s);
  }
  for (const [, name] of text.matchAll(/^([A-Za-z_:][\w:]*)[{ ]/gm)) exposed.add(name!);
});
afterAll(async () => {
  await app.stop();
  sink.stop();
});

test("the metric-name reader finds names and nothing else", () => {
  expect(metricNames('histogram_quantile(0.99, sum by (le, carrier) (rate(gateway_submit_seconds_bucket{instance=~"$instance"}[$__rate_interval])))')).toEqual([
    "gateway_submit_seconds_bucket",
  ]);
  expect(metricNames("gateway_queue_oldest_seconds > on (job, instance) group_left () (0.25 * gateway_delivery_validity_seconds)")).toEqual([
    "gateway_queue_oldest_seconds",
    "gateway_delivery_validity_seconds",
  ]);
  expect(metricNames('up{job="mms-gateway"} == 0')).toEqual(["up"]);
});

test("every dashboard panel queries something, and every metric it names is exposed by /metrics", () => {
  const panels = dashboard.panels.filter((p: { type: string }) => p.type !== "row");
  expect(panels.length).toBeGreaterThanOrEqual(15);
  for (const p of panels) expect(p.targets.length).toBeGreaterThan(0);
  const missing = dashboardExprs().flatMap(({ panel, expr }) => metricNames(expr).filter((n) => !exposed.has(n)).map((n) => `${panel}: ${n}`));
  expect(missing).toEqual([]);
  // What the operator is promised to see (issue 16), each drawn from its metric.
  const used = new Set(dashboardExprs().flatMap(({ expr }) => metricNames(expr)));
  for (const n of [
    "gateway_messages_accepted_total",
    "gateway_accept_seconds_bucket",
    "gateway_queue_depth",
    "gateway_queue_oldest_seconds",
    "gateway_submissions_total",
    "gateway_final_events_total",
    "gateway_receipts_total",
    "gateway_webhook_deliveries_total",
    "gateway_dead_letters_total",
    "gateway_carrier_link_up",
    "gateway_fallbacks_total",
  ])
    expect(used.has(n)).toBe(true);
});

test("every metric the alert rules name is exposed by /metrics (up is Prometheus's own)", () => {
  expect(alertExprs.length).toBe((alertsText.match(/^\s+- alert: /gm) ?? []).length);
  const missing = alertExprs.flatMap((e) => metricNames(e)).filter((n) => n !== "up" && !exposed.has(n));
  expect(missing).toEqual([]);
});

test.skipIf(!hasPromtool && !process.env.CI)("promtool check rules and promtool test rules", () => {
  const check = Bun.spawnSync(["promtool", "check", "rules", "alerts.yml"], { cwd: join(dir, "prometheus") });
  expect(check.stdout.toString()).toContain("SUCCESS: 8 rules found");
  expect(check.exitCode).toBe(0);
  const unit = Bun.spawnSync(["promtool", "test", "rules", "alerts.test.yml"], { cwd: join(dir, "prometheus") });
  expect(unit.stdout.toString() + unit.stderr.toString()).toContain("SUCCESS");
  expect(unit.exitCode).toBe(0);
});

test("gateway_ready follows /readyz: 1 when ready, 0 while a carrier link is down", async () => {
  expect(exposedValue(await (await fetch(`${app.url}/metrics`)).text(), "gateway_ready")).toBe(1);
  // An SMSC that is not there: the SMPP link stays down, so the gateway is not ready.
  const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = closed.port!;
  closed.stop(true);
  const down = await startTestApp({ carriers: { sms: { kind: "smpp", host: "127.0.0.1", port, system_id: "x", password: "y", connect_timeout_ms: 1000 } } });
  try {
    expect((await fetch(`${down.url}/readyz`)).status).toBe(503);
    expect(exposedValue(await (await fetch(`${down.url}/metrics`)).text(), "gateway_ready")).toBe(0);
  } finally {
    await down.stop();
  }
});

function exposedValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}
