// `make bench`: every benchmark in one run, one table. Each figure is the median of several runs with its
// spread (min–max); each gateway figure sits beside its ceiling (or Kannel) measured in the same run, with
// the ratio. BENCH_QUICK=1 for a short run (one run each, smaller counts); BENCH_ONLY=accept,pipeline,…
// to run a subset. Everything is loopback-only and every load loop is bounded in count and time.
import { benchAccept } from "./accept.ts";
import { benchIdle } from "./idle.ts";
import { benchKannel } from "./kannel.ts";
import { median, printRows, quick, ratios, spread, type Row } from "./lib/figures.ts";
import { machine } from "./lib/processes.ts";
import { benchMediaAdapt } from "./media-adapt.ts";
import { benchMediaRss } from "./media-rss.ts";
import { benchMm7 } from "./mm7-e2e.ts";
import { benchPaced } from "./paced.ts";
import { benchPipeline } from "./pipeline.ts";
import { benchPostgres } from "./postgres.ts";
import { benchRoutes } from "./routes.ts";
import { benchScale } from "./scale.ts";
import { benchSmpp } from "./smpp.ts";
import { benchTwoSmsc } from "./two-smsc.ts";

const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim());
const want = (name: string) => !only || only.includes(name);
const rows: Row[] = [];
const failures: string[] = [];
const started = Date.now();
const m = machine();
const binaryPath = `${import.meta.dir}/../dist/mms-gateway`;
const binaryStamp = () => {
  try {
    const st = require("node:fs").statSync(binaryPath);
    return `${new Date(st.mtimeMs).toISOString()} (${st.size} bytes)`;
  } catch {
    return "missing";
  }
};
const binaryAtStart = binaryStamp();
console.error(`bench: ${quick ? "QUICK" : "full"} run on ${m.cpus} × ${m.model}, ${m.memory}, kernel ${m.kernel}, Bun ${m.bun}, load average ${m.loadavg}`);

async function section(name: string, fn: () => Promise<Row[]>): Promise<void> {
  if (!want(name)) return;
  const t = Date.now();
  console.error(`\n== ${name}`);
  try {
    rows.push(...(await fn()));
  } catch (e) {
    failures.push(`${name}: ${(e as Error).message}`);
    rows.push({ bench: name, figure: "FAILED", gateway: (e as Error).message.slice(0, 80), ceiling: "", ratio: "", target: "" });
  }
  console.error(`== ${name} took ${((Date.now() - t) / 1000).toFixed(0)} s`);
}

await section("accept", async () => {
  const { rows: accept, oneConnection: one } = await benchAccept();
  return [
    ...accept.map(([bench, rps, p50, p99, ceil, ratio]) => ({
      bench: "accept POST /mms (wrk, unique request_id, fsynced)",
      figure: `${bench!.replace(/^accept POST \/mms, /, "")}: req/s (p50 ${p50} ms, p99 ${p99} ms)`,
      gateway: rps!,
      ceiling: `${ceil} (bare Bun.serve 200)`,
      ratio: ratio!,
      target: bench!.endsWith(" 64 conn") ? "≥ 0.4" : "",
    })),
    {
      bench: "accept POST /mms, one connection, beside the disk's limit",
      figure: `req/s vs 1 / (fdatasync of ${one.walBytes.toFixed(0)} B WAL (${spread(one.fsyncMs, 3)} ms) + bare round trip (${spread(one.roundTripMs, 3)} ms))`,
      gateway: spread(one.gatewayRps),
      ceiling: `${spread(one.limitRps)} (fsync-bound limit)`,
      ratio: spread(ratios(one.gatewayRps, one.limitRps), 2),
      target: "≥ 0.8",
    },
  ];
});
await section("pipeline", benchPipeline);
await section("mm7", benchMm7);
await section("smpp", benchSmpp);
await section("kannel", benchKannel);
await section("paced", () => benchPaced());
await section("scale", benchScale);
await section("routes", benchRoutes);
await section("two-smsc", benchTwoSmsc);
await section("postgres-accept", () => benchPostgres("accept"));
await section("postgres-nodes", () => benchPostgres("nodes"));
await section("postgres-takeover", () => benchPostgres("takeover"));
await section("idle", benchIdle);
await section("media", async () => {
  const { results } = await benchMediaAdapt();
  const chosen = results.find((r) => r.lib === "sharp")!;
  const rows: Row[] = [];
  for (const kind of ["jpeg", "png", "gif"] as const) {
    // The fastest other library that could do it at all, measured in the same run.
    const other = results.filter((r) => r.lib !== "sharp" && r.cpuMs[kind] !== null).sort((a, b) => a.cpuMs[kind]! - b.cpuMs[kind]!)[0];
    rows.push({
      bench: "media adaptation to ≤ 300 KB, ≤ 1280 px (sharp)",
      figure: `${kind} source: CPU ms per image (wall ms)`,
      gateway: `${chosen.cpuMs[kind]} (${chosen.ms[kind]})`,
      ceiling: other ? `${other.cpuMs[kind]} (${other.ms[kind]}) ${other.lib}` : "no other library reads it",
      ratio: other && chosen.cpuMs[kind] ? (other.cpuMs[kind]! / chosen.cpuMs[kind]!).toFixed(1) : "",
      target: "",
    });
  }
  return rows;
});

await section("media-rss", async () => {
  const r = await benchMediaRss();
  const peaks = (mode: "spooled" | "in-memory") => r.runs[mode].map((x) => x.peakMb);
  return [
    {
      bench: `peak RSS fetching + adapting a ${(r.sourceBytes / 1048576).toFixed(1)} MB JPEG (MB; source streamed to disk vs held in memory)`,
      figure: "VmHWM MB",
      gateway: spread(peaks("spooled")),
      ceiling: `${spread(peaks("in-memory"))} in memory`,
      ratio: (median(peaks("spooled")) / median(peaks("in-memory"))).toFixed(2),
      target: "below the in-memory figure",
    },
  ];
});

const end = machine();
console.log(`\nmms-gateway benchmarks — ${m.date} — ${quick ? "QUICK run (BENCH_QUICK=1: 1 run each, small counts)" : "full run"}, ${((Date.now() - started) / 60000).toFixed(1)} min`);
console.log(`machine: ${m.cpus} CPUs (${m.model}), ${m.memory}, kernel ${m.kernel}, Bun ${m.bun}; load average at start ${m.loadavg}, at end ${end.loadavg}`);
const binaryAtEnd = binaryStamp();
console.log(`binary: dist/mms-gateway built ${binaryAtStart}${binaryAtEnd !== binaryAtStart ? ` — REPLACED during the run (now ${binaryAtEnd}): figures mix two builds` : ""}`);
console.log("figures: median (min–max) of the runs; ratio = gateway ÷ ceiling (or ÷ Kannel) run by run; ceilings and Kannel measured in this same run\n");
printRows(rows);
if (failures.length) {
  console.log(`\nFAILED: ${failures.join("; ")}`);
  process.exitCode = 1;
}
