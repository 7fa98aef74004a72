// bench/accept: POST /mms with unique request IDs at 1, 16 and 64 connections, durable (fsynced) 200s,
// beside a bare Bun.serve answering a constant 200 measured in the same run.
import { ACME_KEY, sendBody } from "../test/support/app.ts";
import { spread } from "./lib/figures.ts";
import { sendScript, wrk, type WrkResult } from "./lib/load.ts";
import { startCeiling, startGateway } from "./lib/processes.ts";

const quick = process.env.BENCH_QUICK === "1";
const seconds = Number(process.env.BENCH_SECONDS ?? (quick ? 2 : 5));
const runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3));
const connections = [1, 16, 64];

export async function benchAccept(): Promise<string[][]> {
  const lua = sendScript("/mms", { "Chan-Api-Key": ACME_KEY }, sendBody({ callback_url: "https://br.example/cb", media: { url: "https://cdn.example/img.jpg" } }));
  const ceiling = await startCeiling();
  // Paused delivery: this measures intake alone (the pipeline has its own benchmark).
  const gw = await startGateway({ delivery: { paused: true }, limits: { queue_high_water: 100_000_000 } });
  const rows: string[][] = [];
  try {
    for (const c of connections) {
      const base: WrkResult[] = [];
      const mine: WrkResult[] = [];
      for (let i = 0; i < runs; i++) {
        base.push(await wrk(`${ceiling.url}/mms`, { connections: c, seconds, lua }));
        mine.push(await wrk(`${gw.url}/mms`, { connections: c, seconds, lua }));
      }
      if (mine.some((r) => r.non2xx > 0)) throw new Error(`gateway answered non-200: ${JSON.stringify(mine)}`);
      const ratio = mine.map((m, i) => m.rps / base[i]!.rps);
      rows.push([
        `accept POST /mms, ${c} conn`,
        spread(mine.map((r) => r.rps)),
        spread(mine.map((r) => r.p50), 2),
        spread(mine.map((r) => r.p99), 2),
        spread(base.map((r) => r.rps)),
        spread(ratio, 2),
      ]);
      console.error(rows.at(-1)!.join(" | "));
    }
  } finally {
    await gw.stop();
    await ceiling.stop();
  }
  return rows;
}

if (import.meta.main) {
  console.log("case | gateway req/s | p50 ms | p99 ms | ceiling req/s | ratio");
  await benchAccept();
}
