// bench/idle: the CPU a compiled gateway (dist/mms-gateway) uses with no traffic, as a share of one core,
// read from /proc/<pid>/stat over a fixed window after start-up has settled. Two cases: sandbox carriers
// only, and one SMPP bind held open to the simulator (enquire_link at its default period). Target < 1%.
// Usage: bun bench/idle.ts [seconds per case, default 30]   (bench/run.ts calls benchIdle())
import { quick, type Row, spread } from "./lib/figures.ts";
import { cpuMs, spawnHelper, startGateway } from "./lib/processes.ts";

const SETTLE_MS = 3000;

async function idleShare(overrides: Record<string, unknown>, seconds: number): Promise<number> {
  const gw = await startGateway(overrides);
  try {
    await Bun.sleep(SETTLE_MS);
    const c0 = cpuMs(gw.proc.pid);
    const t0 = performance.now();
    await Bun.sleep(seconds * 1000);
    const c1 = cpuMs(gw.proc.pid);
    return (c1 - c0) / (performance.now() - t0);
  } finally {
    await gw.stop();
  }
}

export async function benchIdle(seconds = quick ? 10 : 30, runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 2))): Promise<Row[]> {
  const sim = await spawnHelper("smpp-smsc.ts");
  const cases: [string, Record<string, unknown>][] = [
    ["sandbox carriers", {}],
    ["one SMPP bind to the simulator", { carriers: { sms: { kind: "smpp", host: "127.0.0.1", port: sim.port, system_id: "gw", password: "pw" } } }],
  ];
  const rows: Row[] = [];
  try {
    for (const [name, overrides] of cases) {
      const shares: number[] = [];
      for (let i = 0; i < runs; i++) {
        shares.push((await idleShare(overrides, seconds)) * 100);
        console.error(`idle ${name} run ${i}: ${shares.at(-1)!.toFixed(2)}% of a core over ${seconds} s`);
      }
      rows.push({
        bench: `idle gateway (binary, no traffic, ${seconds} s window)`,
        figure: `${name}: % of one core`,
        gateway: spread(shares, 2),
        ceiling: "",
        ratio: "",
        target: "< 1%",
      });
    }
  } finally {
    await sim.stop();
  }
  return rows;
}

if (import.meta.main) {
  const seconds = Number(process.argv[2] ?? 30);
  for (const r of await benchIdle(seconds, 1)) console.log(`${r.figure}: ${r.gateway} (target ${r.target})`);
}
