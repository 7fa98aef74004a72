// GET /status: one read-only HTML page an operator leaves open. Rendered on the server, no script, no
// build step; it reloads itself with a meta refresh. Every value from outside is escaped.
import { Elysia } from "elysia";
import type { CarrierHealth } from "../../adapters/carrier.ts";
import type { Activity, SubmitOutcome } from "../observe/activity.ts";
import { esc } from "./html.ts";
import { barChart } from "./status-charts.ts";
import type { Store } from "../store/index.ts";

export interface StatusDeps {
  store: Store;
  activity: Activity;
  carriers: () => CarrierHealth[];
  /** The configured carriers' names: each gets its chart, traffic or not. */
  carrierNames: () => string[];
  now: () => number;
  refuse: (request: Request, addr: string) => Response | null;
  version: string;
}

const iso = (ms: unknown) => (typeof ms === "number" ? new Date(ms).toISOString().replace(/\.\d+Z$/, "Z") : "");
const age = (s: number) => (s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

function table(headers: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return `<p class="empty">${esc(empty)}</p>`;
  return `<table><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>${rows.map((r) => `<tr>${r.join("")}</tr>`).join("")}</table>`;
}

/** A cell; `key` names the figure for anyone reading the page by machine (the browser test does). */
/** Carrier answers, drawn bottom up: accepted, to be retried, refused for good. */
const outcomes: [SubmitOutcome, string][] = [
  ["ok", "#2e8b3a"],
  ["temporary", "#e0a100"],
  ["permanent", "#c62828"],
];

const td = (v: unknown, key?: string) => `<td${key ? ` data-k="${esc(key)}"` : ""}>${esc(v)}</td>`;

export async function renderStatus(d: StatusDeps, refreshS: number): Promise<string> {
  const now = d.now();
  const carriers = d.carriers();
  const [queue, events, dead, nodes] = await Promise.all([d.store.queueStats(), d.store.eventStats(), d.store.listDeadEvents(50), d.store.nodes()]);
  const buckets = d.activity.throughput();
  const lastMinute = buckets.slice(-Math.ceil(60_000 / d.activity.bucketMs));
  const sum = (bs: typeof buckets, k: "accepted" | "finals") => bs.reduce((n, b) => n + b[k], 0);
  const errors = d.activity.recentErrors();

  const sections = [
    `<h2>Carrier links</h2>` +
      table(
        ["link", "state", "detail"],
        carriers.map((c) => [td(c.name), `<td class="${c.state === "up" ? "ok" : c.state === "idle" || c.state === "standby" ? "" : "bad"}" data-k="carrier:${esc(c.name)}">${esc(c.state)}</td>`, td(c.detail)]),
        "no carrier links",
      ),
    `<h2>Nodes <small>(sharing this store)</small></h2>` +
      table(
        ["node", "state", "last heartbeat", "started"],
        nodes.map((n) => [td(n.id), `<td class="${n.live ? "ok" : "bad"}" data-k="node:${esc(n.id)}">${n.live ? "up" : "silent"}</td>`, td(`${age((now - n.seenAt) / 1000)} ago`), td(iso(n.startedAt))]),
        "no nodes",
      ),
    `<h2>Queue</h2>` +
      table(
        ["state", "channel", "messages", "oldest"],
        queue.map((q) => [td(q.state), td(q.channel), td(q.count, `queue:${q.state}:${q.channel}`), td(q.oldest === null ? "" : age((now - q.oldest) / 1000))]),
        "nothing waiting",
      ) +
      table(
        ["webhook events", "count"],
        events.map((e) => [td(e.state), td(e.count, `events:${e.state}`)]),
        "no webhook events waiting",
      ),
    `<h2>Throughput</h2>` +
      `<p>last minute: <b data-k="minute:accepted">${sum(lastMinute, "accepted")}</b> accepted, <b data-k="minute:finals">${sum(lastMinute, "finals")}</b> final; ` +
      `last ${Math.round((buckets.length * d.activity.bucketMs) / 60_000)} minutes: <b data-k="window:accepted">${sum(buckets, "accepted")}</b> accepted, ` +
      `<b data-k="window:finals">${sum(buckets, "finals")}</b> final</p>` +
      barChart("chart:accepted", "Accepted messages", buckets, [{ name: "accepted", color: "#3572b0", value: (b) => b.accepted }], d.activity.bucketMs) +
      d
        .carrierNames()
        .map((carrier) =>
          barChart(
            `chart:carrier:${carrier}`,
            `Carrier ${carrier}: submits by outcome`,
            buckets,
            outcomes.map(([outcome, color]) => ({ name: outcome, color, value: (b) => b.submits[carrier]?.[outcome] ?? 0 })),
            d.activity.bucketMs,
          ),
        )
        .join(""),
    `<h2>Recent problems <small>(warnings and errors, one line per kind and target)</small></h2>` +
      table(
        ["problem", "target", "level", "times", "first seen", "last seen", "latest details"],
        errors.map((e) => [
          td(e.msg),
          td(e.target),
          td(e.level),
          td(e.count, "problem-count"),
          td(iso(e.first)),
          td(iso(e.at)),
          td(Object.entries(e.fields).filter(([, v]) => v !== e.target).map(([k, v]) => `${k}=${v}`).join(" ")),
        ]),
        "no warnings or errors since start",
      ),
    `<h2>Dead letters <small>(<span data-k="dead:shown">${dead.length}</span> shown; requeue with <code>mms-gateway admin requeue</code>)</small></h2>` +
      table(
        ["seq", "event", "message", "account", "url", "attempts", "last error", "since"],
        dead.map((e) => [td(e.seq), td(e.event_id), td(e.message_id), td(e.account_id), td(e.url), td(e.attempts), td(e.last_error), td(iso(e.updated_at))]),
        "no dead letters",
      ),
  ];

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${refreshS}">
<title>mms-gateway status</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.3em 0 1em}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}.ok{color:#070}.bad{color:#b00;font-weight:bold}
.empty{color:#777}small{font-weight:normal;color:#555}figure{margin:.4em 0 1em}figcaption{margin-bottom:.2em}
.key i{display:inline-block;width:.8em;height:.8em;margin:0 .25em 0 .5em;vertical-align:-.05em}svg text{fill:#555}</style></head>
<body><h1>mms-gateway</h1><p>version ${esc(d.version)} · page made at <span data-k="generated">${esc(iso(now))}</span> · reloads every ${refreshS} s</p>
${sections.join("\n")}
</body></html>
`;
}

export function statusPage(d: StatusDeps) {
  return new Elysia({ name: "status-page" }).get("/status", async ({ request, server }) => {
    const refused = d.refuse(request, server?.requestIP(request)?.address ?? "unknown");
    if (refused) return refused;
    const asked = Number(new URL(request.url).searchParams.get("refresh") ?? "5");
    const refreshS = Number.isInteger(asked) && asked >= 1 && asked <= 3600 ? asked : 5;
    return new Response(await renderStatus(d, refreshS), {
      headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "x-frame-options": "DENY", "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'" },
    });
  });
}
