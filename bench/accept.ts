// bench/accept: POST /mms with unique request IDs at 1, 16 and 64 connections, durable (fsynced) 200s,
// beside a bare Bun.serve answering a constant 200 measured in the same run. One connection is also set
// beside the limit the disk allows: each lone request waits for one fdatasync of its WAL frames plus one
// HTTP round trip, so 1 / (median fdatasync of that many bytes + bare round trip) is the most it can do.
import { Database } from "bun:sqlite";
import { closeSync, fdatasyncSync, openSync, readdirSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ACME_KEY, sendBody } from "../test/support/app.ts";
import { median, spread } from "./lib/figures.ts";
import { sendScript, wrk, type WrkResult } from "./lib/load.ts";
import { startCeiling, startGateway } from "./lib/processes.ts";

const quick = process.env.BENCH_QUICK === "1";
const seconds = Number(process.env.BENCH_SECONDS ?? (quick ? 2 : 5));
const runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3));
const connections = [1, 16, 64];

/**
 * Bytes the gateway appends to its WAL per lone accept: the WAL's growth over n sequential requests, while a read
 * transaction held here keeps the gateway's checkpoints from letting the WAL start over (they would every 32
 * commits once everything is copied, and the file would stop growing).
 */
async function walBytesPerAccept(url: string, dir: string, body: Record<string, unknown>, n = 100): Promise<number> {
  const file = readdirSync(dir, { recursive: true }).map(String).find((x) => x.endsWith(".db"));
  if (!file) throw new Error(`no database file under ${dir}`);
  const wal = () => statSync(join(dir, `${file}-wal`), { throwIfNoEntry: false })?.size ?? 0;
  const post = (id: string) =>
    fetch(`${url}/mms`, { method: "POST", headers: { "Chan-Api-Key": ACME_KEY, "content-type": "application/json" }, body: JSON.stringify({ ...body, request_id: id }) }).then(async (r) => {
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    });
  await post(`wal-warm-${Date.now()}`);
  const reader = new Database(join(dir, file), { readonly: true });
  try {
    reader.run("BEGIN");
    reader.query("SELECT COUNT(*) FROM messages").get();
    const before = wal();
    for (let i = 0; i < n; i++) await post(`wal-${Date.now()}-${i}`);
    return (wal() - before) / n;
  } finally {
    reader.run("COMMIT");
    reader.close();
  }
}

/**
 * Median seconds of one fdatasync after writing `bytes` into a file in `dir` that already holds them: the WAL, once
 * checkpointed, starts over and overwrites frames in place, so the file's size does not change (an append would also
 * make fdatasync write the new size, and the disk look slower than the WAL finds it).
 */
function fdatasyncSeconds(dir: string, bytes: number, n = 200): number {
  const fd = openSync(join(dir, "fsync-probe"), "w");
  const chunk = Buffer.alloc(Math.max(1, Math.round(bytes)), 7);
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) writeSync(fd, chunk, 0, chunk.length, i * chunk.length);
    fdatasyncSync(fd);
    for (let i = 0; i < n; i++) {
      writeSync(fd, chunk, 0, chunk.length, i * chunk.length);
      const t = Bun.nanoseconds();
      fdatasyncSync(fd);
      times.push((Bun.nanoseconds() - t) / 1e9);
    }
  } finally {
    closeSync(fd);
  }
  return median(times);
}

export interface OneConnection {
  gatewayRps: number[];
  limitRps: number[];
  walBytes: number;
  fsyncMs: number[];
  roundTripMs: number[];
}

export async function benchAccept(): Promise<{ rows: string[][]; oneConnection: OneConnection }> {
  const body = sendBody({ callback_url: "https://br.example/cb", media: { url: "https://cdn.example/img.jpg" } });
  const lua = sendScript("/mms", { "Chan-Api-Key": ACME_KEY }, body);
  const ceiling = await startCeiling();
  // Paused delivery: this measures intake alone (the pipeline has its own benchmark).
  const gw = await startGateway({ delivery: { paused: true }, limits: { queue_high_water: 100_000_000 } });
  const rows: string[][] = [];
  let oneConnection: OneConnection | undefined;
  try {
    const walBytes = await walBytesPerAccept(gw.url, gw.dir, body);
    for (const c of connections) {
      const base: WrkResult[] = [];
      const mine: WrkResult[] = [];
      const fsync: number[] = [];
      for (let i = 0; i < runs; i++) {
        base.push(await wrk(`${ceiling.url}/mms`, { connections: c, seconds, lua }));
        mine.push(await wrk(`${gw.url}/mms`, { connections: c, seconds, lua }));
        // The disk as it is in this run, right after it.
        if (c === 1) fsync.push(fdatasyncSeconds(gw.dir, walBytes));
      }
      if (mine.some((r) => r.non2xx > 0)) throw new Error(`gateway answered non-200: ${JSON.stringify(mine)}`);
      const ratio = mine.map((m, i) => m.rps / base[i]!.rps);
      if (c === 1) {
        // Run by run: the fdatasync measured right after this run, and this run's bare round trip.
        const limit = base.map((b, i) => 1 / (fsync[i]! + 1 / b.rps));
        oneConnection = { gatewayRps: mine.map((m) => m.rps), limitRps: limit, walBytes, fsyncMs: fsync.map((x) => x * 1000), roundTripMs: base.map((b) => 1000 / b.rps) };
        console.error(`one connection: WAL ${walBytes.toFixed(0)} B per accept, fdatasync ${spread(oneConnection.fsyncMs, 3)} ms, bare round trip ${spread(oneConnection.roundTripMs, 3)} ms, limit ${spread(limit)} req/s`);
      }
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
  return { rows, oneConnection: oneConnection! };
}

if (import.meta.main) {
  console.log("case | gateway req/s | p50 ms | p99 ms | ceiling req/s | ratio");
  const { rows } = await benchAccept();
  for (const r of rows) console.log(r.join(" | "));
}
