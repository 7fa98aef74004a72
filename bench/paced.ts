// bench/paced: the steady load operators run (#15). SMS end to end (POST /sms → submit_sm to the simulator,
// which answers at once and sends a DELIVRD receipt → batched webhook) paced at 100, 1,000 and 3,000 msg/s
// for a bounded count each, through the compiled binary. The figure is CPU ms per message of the gateway
// process (utime+stime from /proc, first send → last callback): far less sensitive to a loaded machine than
// throughput. The floor beside it: CPU per request of a bare Bun.serve answering 200, paced alike by the
// same client — what receiving the HTTP requests alone costs at that rate.
// Also "one at a time": each message sent only once the previous one's callback arrived, so every step
// (accept, claim, submit answer, receipt, webhook) runs alone whatever the machine's load — the fixed cost
// per message that small groups pay, and the figure least moved by other work on the machine.
// Usage: bun bench/paced.ts [rate …]   (PACED_SECONDS per rate, BENCH_RUNS; bench/run.ts calls benchPaced())
import { ACME_KEY } from "../test/support/app.ts";
import { e2eRun } from "./lib/e2e.ts";
import { fmtN, quick, type Row, spread } from "./lib/figures.ts";
import { apiPost, rawLoad } from "./lib/load.ts";
import { cpuMs, type SinkHandle, spawnHelper, startCeiling, startCountingSink, startGateway } from "./lib/processes.ts";

const RATES = [100, 1000, 3000];
const CONNECTIONS = 64;
const WARMUP = 2000;

const loadavg = () => require("node:fs").readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ") as string;

/** CPU ms per request of the bare server at `rate`, over `n` requests. */
async function floorCpu(rate: number, n: number): Promise<number> {
  const bare = await startCeiling();
  try {
    const port = Number(new URL(bare.url).port);
    const req = (i: number) => apiPost("/sms", { to: "0012025550123", from: "12345", text: "Benchmark message", request_id: `f-${i}` });
    const c0 = cpuMs(bare.proc.pid);
    const r = await rawLoad({ port, n, connections: CONNECTIONS, rate, deadlineS: Math.ceil(n / rate) + 30, request: req });
    return (cpuMs(bare.proc.pid) - c0) / Math.max(1, r.ok);
  } finally {
    await bare.stop();
  }
}

/** CPU ms per message of the gateway sending `n` messages one at a time (next after the previous callback). */
export async function lockstep(gatewayUrl: string, pid: number, sink: SinkHandle, n: number, tag: string): Promise<number> {
  await sink.reset();
  const c0 = cpuMs(pid);
  for (let i = 0; i < n; i++) {
    const body = JSON.stringify({ to: "0012025550123", from: "12345", text: "Benchmark message", request_id: `${tag}${i}`, callback_url: sink.url });
    const r = await fetch(`${gatewayUrl}/sms`, { method: "POST", headers: { "Chan-Api-Key": ACME_KEY, "content-type": "application/json" }, body });
    if (r.status !== 200) throw new Error(`one at a time: HTTP ${r.status}`);
    await r.arrayBuffer();
    const until = Date.now() + 30_000;
    while ((await sink.stats()).events < i + 1) {
      if (Date.now() > until) throw new Error(`one at a time: no callback for message ${i}`);
      await Bun.sleep(1);
    }
  }
  return (cpuMs(pid) - c0) / n;
}

export interface PacedFigure {
  rate: number;
  cpuPerMsg: number;
  floor: number;
  p50: number;
  p99: number;
  load: string;
}

/** One gateway per run, warmed up, then each rate in turn. */
export async function pacedRuns(
  rates = RATES,
  runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3)),
  seconds = Number(process.env.PACED_SECONDS ?? (quick ? 4 : 10)),
  alone = Number(process.env.PACED_ALONE ?? (quick ? 200 : 500)),
): Promise<{ paced: PacedFigure[][]; alone: { cpuPerMsg: number; load: string }[] }> {
  const sink = await startCountingSink();
  const sim = await spawnHelper("smpp-smsc.ts", { SMSC_RECEIPTS: "1" });
  const out: PacedFigure[][] = rates.map(() => []);
  const single: { cpuPerMsg: number; load: string }[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const gw = await startGateway({
        carriers: { sms: { kind: "smpp", host: "127.0.0.1", port: sim.port, system_id: "gw", password: "pw", window: 500, tps: 0, concurrency: 1000 } },
        limits: { queue_high_water: 100_000_000 },
        webhooks: { batch_max_events: 100, batch_max_wait_ms: 5 },
      });
      try {
        const tag0 = `p${run}-${Date.now().toString(36)}-`;
        const request = (tag: string) => (i: number) => apiPost("/sms", { to: "0012025550123", from: "12345", text: "Benchmark message", request_id: tag + i, callback_url: sink.url });
        // JIT warm-up at the middle rate, not measured.
        await e2eRun({ port: gw.port, sink, n: WARMUP, connections: CONNECTIONS, rate: 1000, request: request(`${tag0}w-`), key: (i) => `${tag0}w-${i}`, pids: [gw.proc.pid], deadlineS: 60 });
        if (alone > 0) {
          const load = loadavg();
          const cpu = await lockstep(gw.url, gw.proc.pid, sink, alone, `${tag0}a-`);
          single.push({ cpuPerMsg: cpu, load });
          console.error(`paced run ${run} one at a time × ${alone}: ${cpu.toFixed(3)} CPU ms/msg; load ${load}`);
        }
        for (const [k, rate] of rates.entries()) {
          const n = rate * seconds;
          const tag = `${tag0}${rate}-`;
          const load = loadavg();
          const r = await e2eRun({ port: gw.port, sink, n, connections: CONNECTIONS, rate, request: request(tag), key: (i) => tag + i, pids: [gw.proc.pid], deadlineS: seconds + 60 });
          const floor = await floorCpu(rate, n);
          out[k]!.push({ rate, cpuPerMsg: r.cpuPerMsg, floor, p50: r.p50, p99: r.p99, load });
          console.error(
            `paced run ${run} ${fmtN(rate)}/s × ${fmtN(n)}: ${r.cpuPerMsg.toFixed(3)} CPU ms/msg (bare floor ${floor.toFixed(3)}), e2e ${fmtN(r.e2ePerS)} msg/s, p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms, ${r.posts} webhook POSTs; load ${load}`,
          );
        }
      } finally {
        await gw.stop();
      }
    }
  } finally {
    await sim.stop();
    await sink.stop();
  }
  return { paced: out, alone: single };
}

export async function benchPaced(rates = RATES): Promise<Row[]> {
  const { paced, alone } = await pacedRuns(rates);
  const label = `SMS paced (binary, ${CONNECTIONS} conn, simulator receipts)`;
  const rows: Row[] = alone.length
    ? [
        {
          bench: label,
          figure: `one at a time (next after the previous callback): gateway CPU ms per message (load ${alone.map((r) => r.load.split(" ")[0]).join(", ")})`,
          gateway: spread(alone.map((r) => r.cpuPerMsg), 3),
          ceiling: "",
          ratio: "",
          target: "",
        },
      ]
    : [];
  return rows.concat(paced.map((runs) => ({
    bench: label,
    figure: `${fmtN(runs[0]!.rate)}/s: gateway CPU ms per message (p50 ${spread(runs.map((r) => r.p50), 1)} ms, p99 ${spread(runs.map((r) => r.p99), 1)} ms; load ${runs.map((r) => r.load.split(" ")[0]).join(", ")})`,
    gateway: spread(runs.map((r) => r.cpuPerMsg), 3),
    ceiling: `${spread(runs.map((r) => r.floor), 3)} (bare Bun.serve 200, same pace)`,
    ratio: spread(runs.map((r) => r.cpuPerMsg / r.floor), 1),
    target: runs[0]!.rate === 1000 ? "≤ ½ Kannel's (kannel row)" : "",
  })));
}

if (import.meta.main) {
  const asked = process.argv.slice(2).map(Number).filter((x) => x > 0);
  for (const r of await benchPaced(asked.length ? asked : RATES)) console.log(`${r.figure}: ${r.gateway} vs floor ${r.ceiling}, ratio ${r.ratio}`);
}
