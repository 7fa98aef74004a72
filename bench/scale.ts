// bench/scale: memory and scale of the compiled gateway.
//   RSS at idle on an empty database; accept throughput (wrk, 16 conn, delivery paused) with 0, 100k and
//   1M finished messages stored; start-up time to ready (/healthz answering) with 100k and 1M stored; RSS at
//   idle and after the accept runs with 1M stored.
// The stored messages are written straight into the gateway's own schema with bun:sqlite (the store opens
// the file once so its migrations run): delivered messages (due_at NULL) created over the last 6 days,
// each with its dedup row (inside the 7-day window) and its delivered webhook event.
// Run: ./node_modules/.bin/bun bench/scale.ts   (BENCH_QUICK=1: 100k instead of 1M)
import { Database } from "bun:sqlite";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { newId } from "../src/domain/event.ts";
import { SqliteStore } from "../src/store/sqlite/store.ts";
import { ACME_KEY, sendBody } from "../test/support/app.ts";
import { fmtN, median, quick, ratios, type Row, spread } from "./lib/figures.ts";
import { sendScript, wrk } from "./lib/load.ts";
import { rssMb, startGateway, tempDir } from "./lib/processes.ts";

const BIG = Number(process.env.BENCH_SCALE_N ?? (quick ? 100_000 : 1_000_000));
const MID = Math.min(100_000, BIG);
const seconds = Number(process.env.BENCH_SECONDS ?? (quick ? 2 : 5));
const runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3));
const CONNECTIONS = 16;

/** Adds finished messages number `from`..`to-1` to the database at `path` (created with the store's schema). */
export function fillDatabase(path: string, from: number, to: number, total: number): number {
  const t0 = performance.now();
  SqliteStore.open(path, { now: Date.now, retryBaseMs: 1000, retryMaxMs: 1000, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy: "at-most-once" }).close();
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
  // The rows were written without fsync: flush them now, or the kernel's writeback of a 1.5 GB file
  // competes with the gateway's fsyncs during the measurement that follows.
  Bun.spawnSync(["sync"]);
  return (performance.now() - t0) / 1000;
}

async function acceptOnce(dir: string, lua: string): Promise<{ rps: number; rss: number }> {
  const { gw } = await timedStart(dir);
  try {
    const r = await wrk(`${gw.url}/mms`, { connections: CONNECTIONS, seconds, lua });
    if (r.non2xx) throw new Error(`scale: ${r.non2xx} non-2xx answers`);
    return { rps: r.rps, rss: rssMb(gw.proc.pid) };
  } finally {
    await gw.stop();
  }
}

async function timedStart(dir: string): Promise<{ gw: Awaited<ReturnType<typeof startGateway>>; ms: number }> {
  const t = performance.now();
  const gw = await startGateway({ delivery: { paused: true }, limits: { queue_high_water: 100_000_000 } }, { dir });
  return { gw, ms: performance.now() - t };
}

function removeDatabase(dir: string): void {
  for (const f of ["gateway.db", "gateway.db-wal", "gateway.db-shm"]) rmSync(join(dir, f), { force: true });
}

export async function benchScale(): Promise<Row[]> {
  const lua = sendScript("/mms", { "Chan-Api-Key": ACME_KEY }, sendBody({ callback_url: "https://br.example/cb", media: { url: "https://cdn.example/img.jpg" } }));
  const root = tempDir("gw-scale-");
  const dirs = { empty: join(root, "empty"), mid: join(root, "mid"), midTemplate: join(root, "mid-template"), big: join(root, "big") };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const path = join(dirs.big, "gateway.db");
  const rows: Row[] = [];
  try {
    // Empty database: idle RSS and start-up.
    const { gw: g0, ms: start0 } = await timedStart(dirs.empty);
    await Bun.sleep(2000);
    const idle0 = rssMb(g0.proc.pid);
    await g0.stop();

    const fillMid = fillDatabase(join(dirs.midTemplate, "gateway.db"), 0, MID, MID);
    const fillBig = fillDatabase(path, 0, BIG, BIG);
    console.error(`scale: wrote ${fmtN(MID)} rows in ${fillMid.toFixed(1)} s and ${fmtN(BIG)} in ${fillBig.toFixed(1)} s`);
    const startMid: number[] = [];
    const startBig: number[] = [];
    for (let i = 0; i < runs; i++) {
      for (const [dir, out] of [[dirs.midTemplate, startMid], [dirs.big, startBig]] as const) {
        const s = await timedStart(dir);
        out.push(s.ms);
        await s.gw.stop();
      }
    }
    const { gw: gBig } = await timedStart(dirs.big);
    await Bun.sleep(2000);
    const idleBig = rssMb(gBig.proc.pid);
    await gBig.stop();

    // Accept throughput: the sizes alternate run by run, so drift on this shared machine hits them alike.
    // Each run starts from its size again (the rows an earlier run accepted are removed), except 1M,
    // where they add under 10%.
    const acc0: number[] = [];
    const accMid: number[] = [];
    const accBig: number[] = [];
    let loadedBig = 0;
    for (let i = 0; i < runs; i++) {
      removeDatabase(dirs.empty);
      acc0.push((await acceptOnce(dirs.empty, lua)).rps);
      removeDatabase(dirs.mid);
      copyFileSync(join(dirs.midTemplate, "gateway.db"), join(dirs.mid, "gateway.db"));
      Bun.spawnSync(["sync"]);
      accMid.push((await acceptOnce(dirs.mid, lua)).rps);
      if (BIG > MID) {
        const r = await acceptOnce(dirs.big, lua);
        accBig.push(r.rps);
        loadedBig = r.rss;
      }
    }
    const dbMb = Bun.file(path).size / 1024 / 1024;

    const label = "memory and scale (wrk 16 conn, delivery paused)";
    const big = fmtN(BIG);
    // Ratios run by run (each size's run against the empty database's run of the same round), then
    // their median: drift between rounds on this shared machine cancels instead of entering the ratio.
    const flat = (xs: number[]) => {
      const d = median(ratios(xs, acc0)) - 1;
      return `${d >= 0 ? "+" : ""}${(d * 100).toFixed(0)}% vs 0 stored: ${Math.abs(d) <= 0.1 ? "MET" : d > 0 ? "not flat (faster)" : "MISSED"}`;
    };
    rows.push(
      { bench: label, figure: "RSS at idle, empty database (MB)", gateway: fmtN(idle0, 1), ceiling: "", ratio: "", target: `< 100 MB ${idle0 < 100 ? "MET" : "MISSED"}` },
      { bench: label, figure: `RSS with ${big} stored: idle / after accept runs (MB)`, gateway: `${fmtN(idleBig, 1)} / ${BIG > MID ? fmtN(loadedBig, 1) : "n/a"}`, ceiling: "", ratio: "", target: "" },
      { bench: label, figure: `database file with ${big} stored (MB)`, gateway: fmtN(dbMb, 0), ceiling: "", ratio: "", target: "" },
      { bench: label, figure: "accept req/s, 0 stored", gateway: spread(acc0), ceiling: "", ratio: "1.00", target: "" },
      { bench: label, figure: `accept req/s, ${fmtN(MID)} stored`, gateway: spread(accMid), ceiling: "", ratio: spread(ratios(accMid, acc0), 2), target: `flat ±10%: ${flat(accMid)}` },
      ...(BIG > MID ? [{ bench: label, figure: `accept req/s, ${big} stored`, gateway: spread(accBig), ceiling: "", ratio: spread(ratios(accBig, acc0), 2), target: `flat ±10%: ${flat(accBig)}` }] : []),
      { bench: label, figure: "start-up to ready ms: empty / 100k stored", gateway: `${fmtN(start0)} / ${spread(startMid)}`, ceiling: "", ratio: "", target: "" },
      { bench: label, figure: `start-up to ready ms, ${big} stored`, gateway: spread(startBig), ceiling: "", ratio: "", target: "" },
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.main) {
  const { printRows } = await import("./lib/figures.ts");
  printRows(await benchScale());
}
