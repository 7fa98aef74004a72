// bench/two-smsc: SMS end to end (POST /sms → submit_sm → DELIVRD receipt → webhook, as in bench/kannel.ts)
// with the traffic spread over two SMSCs by a prefix route (#13), beside the same traffic to one SMSC.
// Recipients alternate +1… and +44…; the two-carrier gateway routes 44 to [carriers.sms_b], the rest to its
// default [carriers.sms]; the one-carrier gateway sends both to [carriers.sms]. Every carrier has the same
// settings (window 500, concurrency 1000) and its own simulator process (a simulator spreads receipts over
// every session bound to it). The two gateways alternate run by run, so drift hits both alike.
// Run: ./node_modules/.bin/bun bench/two-smsc.ts   (BENCH_QUICK=1 for a short run)
import { type E2eResult, e2eRun } from "./lib/e2e.ts";
import { fmtN, quick, ratios, type Row, spread } from "./lib/figures.ts";
import { apiPost } from "./lib/load.ts";
import { metricSum, spawnHelper, startCountingSink, startGateway } from "./lib/processes.ts";

const N = Number(process.env.BENCH_TWO_SMSC_N ?? (quick ? 4000 : 20_000));
const runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3));
const CONNECTIONS = 64;
const TEXT = "Benchmark message, GSM 7-bit, nothing fancy.";
const RECIPIENTS = ["0012025550123", "00447700900123"];

const smpp = (port: number) => ({ kind: "smpp", host: "127.0.0.1", port, system_id: "gw", password: "pw", window: 500, tps: 0, concurrency: 1000 });

export async function benchTwoSmsc(): Promise<Row[]> {
  const sink = await startCountingSink();
  const sims = await Promise.all([0, 1, 2].map(() => spawnHelper("smpp-smsc.ts", { SMSC_RECEIPTS: "1" })));
  const common = { limits: { queue_high_water: 100_000_000 }, webhooks: { batch_max_events: 100, batch_max_wait_ms: 5 } };
  const one = await startGateway({ ...common, carriers: { sms: smpp(sims[0]!.port) } });
  const two = await startGateway({
    ...common,
    carriers: { sms: smpp(sims[1]!.port), sms_b: smpp(sims[2]!.port) },
    routes: [{ channel: "sms", prefixes: ["44"], carriers: ["sms_b"] }],
  });
  const res = { one: [] as E2eResult[], two: [] as E2eResult[] };
  const shares: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      for (const [name, gw] of [["one", one], ["two", two]] as const) {
        const tag = `${name}${run}-${Date.now().toString(36)}-`;
        const request = (i: number) =>
          apiPost("/sms", { to: RECIPIENTS[i % 2], from: "12345", text: TEXT, request_id: tag + i, custom_data: `cd=${i}`, callback_url: sink.url });
        const b0 = await metricSum(gw.url, "gateway_submissions_total", 'carrier="sms_b"');
        const all0 = await metricSum(gw.url, "gateway_submissions_total");
        const r = await e2eRun({ port: gw.port, sink, n: N, connections: CONNECTIONS, request, key: (i) => tag + i, pids: [gw.proc.pid] });
        const share = ((await metricSum(gw.url, "gateway_submissions_total", 'carrier="sms_b"')) - b0) / Math.max(1, (await metricSum(gw.url, "gateway_submissions_total")) - all0);
        if (name === "two") shares.push(share);
        res[name].push(r);
        console.error(
          `two-smsc ${name} run ${run}: accept ${fmtN(r.acceptPerS)}/s, e2e ${fmtN(r.e2ePerS)} msg/s, callbacks ${r.events}/${r.accepted} (${r.non2xx} non-2xx), p50 ${fmtN(r.p50)} ms p99 ${fmtN(r.p99)} ms, ${r.cpuPerMsg.toFixed(3)} CPU ms/msg; ${(share * 100).toFixed(0)}% of submits to sms_b`,
        );
      }
    }
  } finally {
    await one.stop();
    await two.stop();
    await Promise.all(sims.map((s) => s.stop()));
    await sink.stop();
  }
  // The split is what this bench is about: a run where the route did not spread the traffic measures nothing.
  if (shares.some((s) => s < 0.4 || s > 0.6)) throw new Error(`the 44 route took ${shares.map((s) => (s * 100).toFixed(0)).join("/")}% of submits, not about half`);
  const label = `SMS over two SMSCs (prefix route) vs one, ${fmtN(N)} burst, ${CONNECTIONS} conn`;
  const two_ = (f: (r: E2eResult) => number, d = 0) => spread(res.two.map(f), d);
  const one_ = (f: (r: E2eResult) => number, d = 0) => `${spread(res.one.map(f), d)} (one SMSC)`;
  const rat = (f: (r: E2eResult) => number) => spread(ratios(res.two.map(f), res.one.map(f)), 2);
  return [
    { bench: label, figure: "end to end msg/s (POST /sms → submit_sm → receipt → webhook)", gateway: two_((r) => r.e2ePerS), ceiling: one_((r) => r.e2ePerS), ratio: rat((r) => r.e2ePerS), target: "" },
    { bench: label, figure: "accept/s", gateway: two_((r) => r.acceptPerS), ceiling: one_((r) => r.acceptPerS), ratio: rat((r) => r.acceptPerS), target: "" },
    { bench: label, figure: "latency request → callback p50 / p99 ms", gateway: `${two_((r) => r.p50)} / ${two_((r) => r.p99)}`, ceiling: `${spread(res.one.map((r) => r.p50))} / ${spread(res.one.map((r) => r.p99))} (one SMSC)`, ratio: "", target: "" },
    { bench: label, figure: "gateway CPU ms per message", gateway: two_((r) => r.cpuPerMsg, 3), ceiling: one_((r) => r.cpuPerMsg, 3), ratio: rat((r) => r.cpuPerMsg), target: "" },
    { bench: label, figure: "share of submits to sms_b (44 route)", gateway: `${spread(shares.map((s) => s * 100))}%`, ceiling: "", ratio: "", target: "" },
  ];
}

if (import.meta.main) {
  const { printRows } = await import("./lib/figures.ts");
  printRows(await benchTwoSmsc());
}
