// bench/mm7-e2e: POST /mms with a 100 KB image (one campaign URL, fetched once and cached) → SubmitReq
// over HTTP to a cheap MMSC stub in its own process (answers 1000 at once, then posts a
// DeliveryReportReq back to the gateway's /mm7) → signed webhook at the counting sink. Plus the
// SubmitReq builds/s of bench/mm7.ts (in process). Ceiling: the same client against a bare Bun.serve.
// Run: ./node_modules/.bin/bun bench/mm7-e2e.ts   (BENCH_QUICK=1 for a short run)
import { ACME_KEY } from "../test/support/app.ts";
import { e2eRun, fmtN, median, quick, rawCeiling, rawPost, ratios, spawnHelper, spread, startCeiling, startCountingSink, startGateway, type E2eResult, type Row } from "./lib.ts";
import { buildFigures } from "./mm7.ts";

const N = Number(process.env.BENCH_MM7_N ?? (quick ? 2000 : 10_000));
const runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3));
const CONNECTIONS = 64;

export async function benchMm7(): Promise<Row[]> {
  const sink = await startCountingSink();
  const mmsc = await spawnHelper("mmsc.ts");
  const ceiling = await startCeiling();
  const stub = `http://127.0.0.1:${mmsc.port}`;
  const gw = await startGateway({
    carriers: { mms: { kind: "mm7", url: `${stub}/mm7`, vaspid: "V", vasid: "S", service_code: "SC", concurrency: 128, queue_limit: 100_000 } },
    // The stub MMSC posts its reports without credentials; both run on loopback only.
    inbound: { mm7: { allow_unauthenticated: true } },
    limits: { queue_high_water: 100_000_000 },
    webhooks: { batch_max_events: 100, batch_max_wait_ms: 5 },
  });
  await fetch(`${stub}/target?url=${encodeURIComponent(`${gw.url}/mm7`)}`).then((r) => r.text());
  const results: E2eResult[] = [];
  const base: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const tag = `m${run}-${Date.now().toString(36)}-`;
      const request = (i: number) =>
        rawPost(
          "/mms",
          { "Chan-Api-Key": ACME_KEY },
          JSON.stringify({
            to: "0012025550123",
            from: "12345",
            subject: "Weekend sale",
            text: "50% off everything this weekend. Reply STOP to opt out.",
            media: [{ url: `${stub}/img.jpg`, content_type: "image/jpeg" }],
            request_id: tag + i,
            custom_data: `cd=${i}`,
            callback_url: sink.url,
          }),
        );
      base.push(await rawCeiling(ceiling.url, N, CONNECTIONS, request));
      const r = await e2eRun({ port: gw.port, sink, n: N, connections: CONNECTIONS, request, key: (i) => tag + i, pids: [gw.proc.pid] });
      const st = await fetch(`${stub}/stats`).then((x) => x.json() as Promise<{ submits: number; bytes: number; reports: number; reportErrors: number }>);
      if (r.non2xx || r.events < r.accepted) console.error(`mm7 run ${run}: ${r.non2xx} non-2xx, ${r.events}/${r.accepted} callbacks; stub ${JSON.stringify(st)}`);
      results.push(r);
      console.error(`mm7 run ${run}: e2e ${fmtN(r.e2ePerS)} MMS/s, accept ${fmtN(r.acceptPerS)}/s, p50 ${fmtN(r.p50)} ms p99 ${fmtN(r.p99)} ms, ${r.cpuPerMsg.toFixed(3)} CPU ms/msg; stub ${JSON.stringify(st)}; ceiling ${fmtN(base.at(-1)!)} req/s`);
    }
  } finally {
    await gw.stop();
    await ceiling.stop();
    await mmsc.stop();
    await sink.stop();
  }
  const build = Array.from({ length: runs }, () => buildFigures(quick ? 0.4 : 1));
  const pick = (name: string) => build.map((b) => b.get(name)!);
  const e2e = results.map((r) => r.e2ePerS);
  const label = `MM7 e2e, 100 KB image, ${fmtN(N)} msgs, ${CONNECTIONS} conn`;
  return [
    { bench: label, figure: "end to end MMS/s (POST → SubmitReq → DR → webhook)", gateway: spread(e2e), ceiling: `${spread(base)} req/s (bare HTTP, same client)`, ratio: spread(ratios(e2e, base), 2), target: `≥ 1,500 ${median(e2e) >= 1500 ? "MET" : "MISSED"}` },
    { bench: label, figure: "accept/s during the run", gateway: spread(results.map((r) => r.acceptPerS)), ceiling: "", ratio: "", target: "" },
    { bench: label, figure: "latency POST → webhook p50 / p99 ms (burst)", gateway: `${spread(results.map((r) => r.p50))} / ${spread(results.map((r) => r.p99))}`, ceiling: "", ratio: "", target: "" },
    { bench: label, figure: "gateway CPU ms per MMS", gateway: spread(results.map((r) => r.cpuPerMsg), 3), ceiling: "", ratio: "", target: "" },
    { bench: "MM7 SubmitReq build (in process)", figure: "whole body/s, 100 KB image cached", gateway: spread(pick("whole body, 100 KB image, cached (campaign)")), ceiling: "", ratio: "", target: "" },
    { bench: "MM7 SubmitReq build (in process)", figure: "whole body/s, 100 KB image uncached", gateway: spread(pick("whole body, 100 KB image, uncached (new key each)")), ceiling: "", ratio: "", target: "" },
    { bench: "MM7 SubmitReq build (in process)", figure: "SOAP envelope only /s", gateway: spread(pick("SubmitReq SOAP envelope only (string template)")), ceiling: "", ratio: "", target: "" },
    { bench: "MM7 SubmitReq build (in process)", figure: "SubmitRsp parse + classify /s", gateway: spread(pick("SubmitRsp parse + classify")), ceiling: "", ratio: "", target: "" },
  ];
}

if (import.meta.main) {
  const { printRows } = await import("./lib.ts");
  printRows(await benchMm7());
}
