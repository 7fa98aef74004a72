// bench/pipeline: POST /mms accepted → sandbox carrier delivers (report after 5 ms) → signed webhook
// batches at a counting sink in its own process. End-to-end messages/s and webhook events/s, beside the
// HTTP ceiling of the same client against a bare Bun.serve (measured in the same run).
// Run: ./node_modules/.bin/bun bench/pipeline.ts   (BENCH_QUICK=1 for a short run)
import { type E2eResult, e2eRun } from "./lib/e2e.ts";
import { fmtN, quick, ratios, type Row, spread } from "./lib/figures.ts";
import { apiPost, rawCeiling } from "./lib/load.ts";
import { startCeiling, startCountingSink, startGateway } from "./lib/processes.ts";

const N = Number(process.env.BENCH_PIPELINE_N ?? (quick ? 3000 : 20_000));
const runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3));
const CONNECTIONS = 64;

export async function benchPipeline(): Promise<Row[]> {
  const sink = await startCountingSink();
  const ceiling = await startCeiling();
  const gw = await startGateway({
    carriers: { mms: { kind: "sandbox", sandbox_report_delay_ms: 5 } },
    limits: { queue_high_water: 100_000_000 },
    webhooks: { batch_max_events: 100, batch_max_wait_ms: 5 },
  });
  const results: E2eResult[] = [];
  const base: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const tag = `p${run}-${Date.now().toString(36)}-`;
      const request = (i: number) =>
        apiPost("/mms", {
            to: "0012025550123",
            from: "18885551234",
            subject: "Weekend sale",
            text: "50% off everything this weekend. Reply STOP to opt out.",
            fallback_text: "50% off (SMS)",
            request_id: tag + i,
            custom_data: `cd=${i}`,
            callback_url: sink.url,
          });
      base.push(await rawCeiling(ceiling.url, N, CONNECTIONS, request));
      const r = await e2eRun({ port: gw.port, sink, n: N, connections: CONNECTIONS, request, key: (i) => tag + i, pids: [gw.proc.pid] });
      if (r.non2xx || r.events < r.accepted) console.error(`pipeline run ${run}: ${r.non2xx} non-2xx, ${r.events}/${r.accepted} callbacks`);
      results.push(r);
      console.error(`pipeline run ${run}: e2e ${fmtN(r.e2ePerS)} msg/s, events ${fmtN(r.eventsPerS)}/s in ${r.posts} posts, accept ${fmtN(r.acceptPerS)}/s, p50 ${fmtN(r.p50)} ms p99 ${fmtN(r.p99)} ms, ${r.cpuPerMsg.toFixed(3)} CPU ms/msg; ceiling ${fmtN(base.at(-1)!)} req/s`);
    }
  } finally {
    await gw.stop();
    await ceiling.stop();
    await sink.stop();
  }
  const e2e = results.map((r) => r.e2ePerS);
  const label = `pipeline MMS sandbox, ${fmtN(N)} msgs, ${CONNECTIONS} conn`;
  const ceil = spread(base) + " req/s (bare HTTP, same client)";
  return [
    { bench: label, figure: "end to end msg/s (POST → webhook)", gateway: spread(e2e), ceiling: ceil, ratio: spread(ratios(e2e, base), 2), target: `≥ 3,000 ${medianLocal(e2e) >= 3000 ? "MET" : "MISSED"}` },
    { bench: label, figure: "webhook events/s (first → last event)", gateway: spread(results.map((r) => r.eventsPerS)), ceiling: "", ratio: "", target: "" },
    { bench: label, figure: "events per webhook POST", gateway: spread(results.map((r) => r.events / Math.max(1, r.posts)), 1), ceiling: "", ratio: "", target: "" },
    { bench: label, figure: "latency POST → webhook p50 / p99 ms (burst)", gateway: `${spread(results.map((r) => r.p50))} / ${spread(results.map((r) => r.p99))}`, ceiling: "", ratio: "", target: "" },
    { bench: label, figure: "gateway CPU ms per message", gateway: spread(results.map((r) => r.cpuPerMsg), 3), ceiling: "", ratio: "", target: "" },
  ];
}

function medianLocal(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

if (import.meta.main) {
  const { printRows } = await import("./lib/figures.ts");
  printRows(await benchPipeline());
}
