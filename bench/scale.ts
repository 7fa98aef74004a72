// bench/scale: memory and scale of the compiled gateway.
//   RSS at idle on an empty database; accept throughput (wrk, 16 conn, delivery paused) with 0, 100k and
//   1M finished messages stored; start-up time to ready (/healthz answering) with 100k and 1M stored; RSS at
//   idle and after the accept runs with 1M stored.
// The stored messages are written straight into the gateway's own schema with bun:sqlite (the store opens
// the file once so its migrations run): delivered messages (due_at NULL) created over the last 6 days,
// each with its dedup row (inside the 7-day window) and its delivered webhook event.
// Run: ./node_modules/.bin/bun bench/scale.ts   (BENCH_QUICK=1: 100k instead of 1M)
import { Database } from "bun:sqlite";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { newId } from "../src/domain/event.ts";
import { Store } from "../src/store/store.ts";
import { ACME_KEY, sendBody } from "../test/support/app.ts";
import { fmtN, quick, rssMb, sendScript, spread, startGateway, tempDir, wrk, type Row } from "./lib.ts";

const BIG = Number(process.env.BENCH_SCALE_N ?? (quick ? 100_000 : 1_000_000));
const MID = Math.min(100_000, BIG);
const seconds = Number(process.env.BENCH_SECONDS ?? (quick ? 2 : 5));
const runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3));
const CONNECTIONS = 16;

/** Adds finished messages number `from`..`to-1` to the database at `path` (created with the store's schema). */
export function fillDatabase(path: string, from: number, to: number, total: number): number {
  const t0 = performance.now();
  Store.open(path, { now: Date.now, retryBaseMs: 1000, retryMaxMs: 1000, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy: "at-most-once" }).close();
  const db = new Database(path);
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = OFF");
  const msg = db.prepare(
    "INSERT INTO messages (id, account_id, request_id, channel, fallback, state, attempts, created_at, updated_at, due_at, expires_at, carrier, last_error, history, payload) VALUES (?, 'acme', ?, 'mms', 0, 'delivered', 1, ?, ?, NULL, ?, 'mms', NULL, ?, ?)",
  );
  const dedup = db.prepare("INSERT INTO dedup (account_id, request_id, message_id, status, response, body_hash, created_at) VALUES ('acme', ?, ?, 200, ?, ?, ?)");
  const carrierId = db.prepare("INSERT INTO carrier_ids (carrier, carrier_id, message_id, part, outcome) VALUES ('mms', ?, ?, 0, 'delivered')");
  const event = db.prepare(
    "INSERT INTO events (event_id, message_id, account_id, kind, url, body, state, attempts, created_at, updated_at, due_at) VALUES (?, ?, 'acme', 'delivered', ?, ?, 'delivered', 1, ?, ?, NULL)",
  );
  const now = Date.now();
  const span = 6 * 24 * 3_600_000;
  const url = "https://br.example/cb";
  const insert = db.transaction((a: number, b: number) => {
    for (let i = a; i < b; i++) {
      const at = now - span + Math.floor((i / total) * span);
      const id = newId("msg", at);
      const rid = `scale-${String(i).padStart(8, "0")}`;
      const payload = JSON.stringify({
        from: "18885551234",
        to: "12025550123",
        subject: "Hello",
        text: "Hello from the test",
        fallback_text: "Hello (SMS)",
        media: [{ url: "https://cdn.example/img.jpg" }],
        custom_data: `cd=${i}`,
        callback_url: url,
        metadata: { campaign: "c1" },
      });
      const history = `${JSON.stringify({ at, state: "accepted" })}\n${JSON.stringify({ at: at + 1, state: "submitting", detail: "claimed" })}\n${JSON.stringify({ at: at + 40, state: "submitted", detail: `submitted to mms as c${i}` })}\n${JSON.stringify({ at: at + 900, state: "delivered" })}\n`;
      msg.run(id, rid, at, at + 900, at + 86_400_000, history, payload);
      dedup.run(rid, id, JSON.stringify({ id, request_id: rid, status: "accepted" }), "0123456789abcdef0123456789abcdef", at);
      carrierId.run(`c${i}`, id);
      const eid = newId("evt", at + 900);
      event.run(
        eid,
        id,
        url,
        JSON.stringify({ event_id: eid, message_id: id, request_id: rid, custom_data: `cd=${i}`, status: "delivered", channel: "mms", fallback: false, timestamp: (at + 900) / 1000, to: "0012025550123", from: "18885551234", carrier_message_id: `c${i}` }),
        at + 900,
        at + 901,
      );
    }
  });
  for (let a = from; a < to; a += 50_000) insert(a, Math.min(to, a + 50_000));
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  return (performance.now() - t0) / 1000;
}

async function acceptRuns(gw: { url: string }, lua: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await wrk(`${gw.url}/mms`, { connections: CONNECTIONS, seconds, lua });
    if (r.non2xx) throw new Error(`scale: ${r.non2xx} non-2xx answers`);
    out.push(r.rps);
  }
  return out;
}

async function timedStart(dir: string): Promise<{ gw: Awaited<ReturnType<typeof startGateway>>; ms: number }> {
  const t = performance.now();
  const gw = await startGateway({ delivery: { paused: true }, limits: { queue_high_water: 100_000_000 } }, { dir });
  return { gw, ms: performance.now() - t };
}

export async function benchScale(): Promise<Row[]> {
  const lua = sendScript("/mms", { "Chan-Api-Key": ACME_KEY }, sendBody({ callback_url: "https://br.example/cb", media: { url: "https://cdn.example/img.jpg" } }));
  const dir = tempDir("gw-scale-");
  const path = join(dir, "gateway.db");
  const rows: Row[] = [];
  try {
    // Empty database: idle RSS, start-up, accept.
    let { gw, ms: start0 } = await timedStart(dir);
    await Bun.sleep(2000);
    const idle0 = rssMb(gw.proc.pid);
    const acc0 = await acceptRuns(gw, lua);
    await gw.stop();
    rmSync(path, { force: true });
    rmSync(`${path}-wal`, { force: true });
    rmSync(`${path}-shm`, { force: true });

    const fillMid = fillDatabase(path, 0, MID, BIG);
    ({ gw } = await timedStart(dir));
    await gw.stop();
    const startMid: number[] = [];
    for (let i = 0; i < runs; i++) {
      const s = await timedStart(dir);
      startMid.push(s.ms);
      if (i < runs - 1) await s.gw.stop();
      else gw = s.gw;
    }
    const accMid = await acceptRuns(gw, lua);
    await gw.stop();

    const fillBig = BIG > MID ? fillDatabase(path, MID, BIG, BIG) : 0;
    console.error(`scale: wrote ${fmtN(MID)} rows in ${fillMid.toFixed(1)} s, then up to ${fmtN(BIG)} in ${fillBig.toFixed(1)} s`);
    const startBig: number[] = [];
    for (let i = 0; i < runs; i++) {
      const s = await timedStart(dir);
      startBig.push(s.ms);
      if (i < runs - 1) await s.gw.stop();
      else gw = s.gw;
    }
    await Bun.sleep(2000);
    const idleBig = rssMb(gw.proc.pid);
    const accBig = await acceptRuns(gw, lua);
    const loadedBig = rssMb(gw.proc.pid);
    await gw.stop();
    const dbMb = Bun.file(path).size / 1024 / 1024;

    const label = "memory and scale (wrk 16 conn, delivery paused)";
    const big = fmtN(BIG);
    const m0 = acc0.slice().sort((a, b) => a - b)[Math.floor(acc0.length / 2)]!;
    const flat = (xs: number[]) => {
      const m = xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const d = (m - m0) / m0;
      return `${d >= 0 ? "+" : ""}${(d * 100).toFixed(0)}% vs 0 stored: ${Math.abs(d) <= 0.1 ? "MET" : d > 0 ? "not flat (faster)" : "MISSED"}`;
    };
    rows.push(
      { bench: label, figure: "RSS at idle, empty database (MB)", gateway: fmtN(idle0, 1), ceiling: "", ratio: "", target: `< 100 MB ${idle0 < 100 ? "MET" : "MISSED"}` },
      { bench: label, figure: `RSS with ${big} stored: idle / after accept runs (MB)`, gateway: `${fmtN(idleBig, 1)} / ${fmtN(loadedBig, 1)}`, ceiling: "", ratio: "", target: "" },
      { bench: label, figure: `database file with ${big} stored (MB)`, gateway: fmtN(dbMb, 0), ceiling: "", ratio: "", target: "" },
      { bench: label, figure: "accept req/s, 0 stored", gateway: spread(acc0), ceiling: "", ratio: "1.00", target: "" },
      { bench: label, figure: `accept req/s, ${fmtN(MID)} stored`, gateway: spread(accMid), ceiling: "", ratio: spread(accMid.map((x) => x / m0), 2), target: `flat ±10%: ${flat(accMid)}` },
      ...(BIG > MID ? [{ bench: label, figure: `accept req/s, ${big} stored`, gateway: spread(accBig), ceiling: "", ratio: spread(accBig.map((x) => x / m0), 2), target: `flat ±10%: ${flat(accBig)}` }] : []),
      { bench: label, figure: "start-up to ready ms: empty / 100k stored", gateway: `${fmtN(start0)} / ${spread(startMid)}`, ceiling: "", ratio: "", target: "" },
      { bench: label, figure: `start-up to ready ms, ${big} stored`, gateway: spread(startBig), ceiling: "", ratio: "", target: "" },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.main) {
  const { printRows } = await import("./lib.ts");
  printRows(await benchScale());
}
