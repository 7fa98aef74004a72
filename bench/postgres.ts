// bench/postgres: the compiled gateway on PostgreSQL, on a throwaway server this run starts for itself
// (initdb in a temp dir, fsync on, loopback only) so the figures do not depend on what else uses the
// shared server, nor its connection limit.
//   accept:   POST /sms at 64 connections, delivery paused, beside the server's own ceiling for the same
//             rows: pgbench, 64 clients, each transaction one dedup key and one message of the same size.
//   nodes:    end to end (POST → sandbox SMSC → webhook) with 1, 2 and 3 nodes on one database, beside one
//             SQLite node, in the same run; msg/s and gateway CPU ms per message.
//   takeover: a node dies holding claimed messages; time until another node has failed them (in-flight
//             policy at-most-once) and their final events reached the webhook: from the death, and from
//             the lease's expiry.
// Run: ./node_modules/.bin/bun bench/postgres.ts   (BENCH_QUICK=1 for a short run)
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { PostgresStore } from "../src/store/postgres/store.ts";
import { startPostgres, type PostgresServer } from "../test/support/pg-server.ts";
import { fmtN, quick, ratios, type Row, spread } from "./lib/figures.ts";
import { apiPost, rawLoad } from "./lib/load.ts";
import { cpuMsOf, type SinkHandle, startCountingSink, startGateway, tempDir } from "./lib/processes.ts";

const runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3));
const ACCEPT_N = Number(process.env.BENCH_PG_ACCEPT_N ?? (quick ? 5000 : 20_000));
const E2E_N = Number(process.env.BENCH_PG_E2E_N ?? (quick ? 1000 : 3000));
const CONNECTIONS = 64;
const SECONDS = Number(process.env.BENCH_SECONDS ?? (quick ? 3 : 5));

const body = (requestId: string, callbackUrl: string) => ({
  to: "0012025550123",
  from: "18885551234",
  text: "50% off everything this weekend. Reply STOP to opt out.",
  request_id: requestId,
  custom_data: `cd=${requestId}`,
  callback_url: callbackUrl,
});

/** One gateway node on `url` (delivery paused, or to the sandbox SMSC), its webhooks to `sink`. */
function startNode(url: string, id: string, o: { paused?: boolean; sink?: string }) {
  return startGateway({
    store: { kind: "postgres", url },
    node: { id },
    delivery: { paused: o.paused ?? false },
    limits: { queue_high_water: 100_000_000 },
    carriers: { sms: { kind: "sandbox", sandbox_report_delay_ms: 5 } },
    webhooks: { batch_max_events: 100, batch_max_wait_ms: 5 },
  });
}

/**
 * pgbench with one transaction per request: the dedup key and the message row the gateway writes for one
 * accept, the same sizes (the texts are copied from rows the gateway wrote), synchronous_commit on.
 */
function pgbenchCeiling(server: PostgresServer, url: string, seconds: number): number {
  const dir = tempDir("gw-bench-pgbench-");
  const script = join(dir, "accept.sql");
  writeFileSync(
    script,
    `\\set r random(1, 1000000000000)
BEGIN;
INSERT INTO dedup (account_id, request_id, message_id, status, response, body_hash, created_at)
  SELECT account_id, 'pgb-' || :client_id || '-' || :r, 'pgb-' || :client_id || '-' || :r, 200, response, body_hash, created_at FROM bench_template_dedup ON CONFLICT DO NOTHING;
INSERT INTO messages (id, account_id, request_id, channel, fallback, state, attempts, created_at, updated_at, due_at, expires_at, history, payload)
  SELECT 'pgb-' || :client_id || '-' || :r, account_id, 'pgb-' || :client_id || '-' || :r, channel, false, 'accepted', 0, created_at, updated_at, due_at, expires_at, history, payload
  FROM bench_template_message ON CONFLICT DO NOTHING;
END;
`,
  );
  const p = Bun.spawnSync([server.bin("pgbench"), "-n", "-c", String(CONNECTIONS), "-j", "2", "-T", String(seconds), "-f", script, url], { stdout: "pipe", stderr: "pipe" });
  rmSync(dir, { recursive: true, force: true });
  const tps = /tps = ([\d.]+)/.exec(p.stdout.toString());
  if (p.exitCode !== 0 || !tps) throw new Error(`pgbench failed: ${p.stderr.toString().slice(0, 300)}`);
  return Number(tps[1]);
}

async function acceptSection(server: PostgresServer): Promise<Row[]> {
  const url = await server.createDatabase("bench_accept");
  const gw = await startNode(url, "n1", { paused: true });
  const mine: number[] = [];
  const p99: number[] = [];
  const base: number[] = [];
  try {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    for (let run = 0; run < runs; run++) {
      const tag = `a${run}-${Date.now().toString(36)}-`;
      const load = await rawLoad({ port: gw.port, n: ACCEPT_N, connections: CONNECTIONS, deadlineS: 60, request: (i) => apiPost("/sms", body(tag + i, "https://br.example/cb")) });
      if (load.non2xx || load.errors) throw new Error(`gateway answered ${load.non2xx} non-200, ${load.errors} errors`);
      mine.push(load.ok / load.elapsed);
      p99.push(load.answerLatencies.sort((a, b) => a - b)[Math.floor(load.answerLatencies.length * 0.99)]!);
      if (run === 0) {
        // The ceiling's rows are copies of one the gateway wrote, so both write the same bytes.
        await sql`CREATE TABLE bench_template_dedup AS SELECT * FROM dedup LIMIT 1`;
        await sql`CREATE TABLE bench_template_message AS SELECT * FROM messages LIMIT 1`;
      }
      base.push(pgbenchCeiling(server, url, SECONDS));
      console.error(`postgres accept run ${run}: gateway ${fmtN(mine.at(-1)!)} req/s (p99 ${fmtN(p99.at(-1)!, 1)} ms), pgbench ${fmtN(base.at(-1)!)} tx/s`);
    }
    await sql.end();
  } finally {
    await gw.stop();
  }
  const ratio = ratios(mine, base);
  const median = [...ratio].sort((a, b) => a - b)[Math.floor(ratio.length / 2)]!;
  return [
    {
      bench: `accept POST /sms on PostgreSQL (${fmtN(ACCEPT_N)} unique request_ids, ${CONNECTIONS} conn)`,
      figure: `req/s (p99 ${spread(p99, 1)} ms)`,
      gateway: spread(mine),
      ceiling: `${spread(base)} tx/s (pgbench, ${CONNECTIONS} clients, same rows)`,
      ratio: spread(ratio, 2),
      target: `≥ 0.5 ${median >= 0.5 ? "MET" : "MISSED"}`,
    },
  ];
}

/** `n` requests spread over the nodes at `ports` (the connections split among them), callbacks counted at `sink`. */
async function endToEnd(ports: number[], pids: number[], sink: SinkHandle, n: number, tag: string) {
  await sink.reset();
  const cpu0 = cpuMsOf(pids);
  const per = Math.ceil(n / ports.length);
  const loads = await Promise.all(
    ports.map((port, k) =>
      rawLoad({ port, n: per, connections: Math.floor(CONNECTIONS / ports.length), deadlineS: 120, request: (i) => apiPost("/sms", body(`${tag}${k}-${i}`, sink.url)) }),
    ),
  );
  const ok = loads.reduce((s, l) => s + l.ok, 0);
  const s = await sink.waitFor(ok, 120_000, 10_000);
  if (s.events < ok) throw new Error(`lost callbacks: ${ok - s.events} of ${ok}`);
  const t0 = Math.min(...loads.map((l) => l.sendTimes[0]!));
  return { perS: s.events / ((s.last - t0) / 1000), cpuPerMsg: (cpuMsOf(pids) - cpu0) / s.events };
}

async function nodesSection(server: PostgresServer): Promise<Row[]> {
  const sink = await startCountingSink();
  const rows: Row[] = [];
  try {
    const sqliteNode = await startGateway({ limits: { queue_high_water: 100_000_000 }, carriers: { sms: { kind: "sandbox", sandbox_report_delay_ms: 5 } }, webhooks: { batch_max_events: 100, batch_max_wait_ms: 5 } });
    const sqlite: { perS: number; cpuPerMsg: number }[] = [];
    try {
      for (let run = 0; run < runs; run++) sqlite.push(await endToEnd([sqliteNode.port], [sqliteNode.proc.pid], sink, E2E_N, `s${run}-`));
    } finally {
      await sqliteNode.stop();
    }
    console.error(`sqlite node: ${sqlite.map((r) => fmtN(r.perS)).join(", ")} msg/s`);
    for (const count of [1, 2, 3]) {
      const url = await server.createDatabase(`bench_nodes_${count}`);
      const nodes = [];
      for (let k = 0; k < count; k++) nodes.push(await startNode(url, `n${k + 1}`, {}));
      const results: { perS: number; cpuPerMsg: number }[] = [];
      try {
        for (let run = 0; run < runs; run++) {
          results.push(await endToEnd(nodes.map((g) => g.port), nodes.map((g) => g.proc.pid), sink, E2E_N, `n${count}-${run}-`));
          console.error(`postgres ${count} node(s) run ${run}: ${fmtN(results.at(-1)!.perS)} msg/s, ${results.at(-1)!.cpuPerMsg.toFixed(3)} CPU ms/msg`);
        }
      } finally {
        await Promise.all(nodes.map((g) => g.stop()));
      }
      const label = `SMS end to end on PostgreSQL, ${fmtN(E2E_N)} msgs, ${CONNECTIONS} conn over the nodes`;
      rows.push({
        bench: label,
        figure: `${count} node(s): msg/s (gateway CPU ms/msg ${spread(results.map((r) => r.cpuPerMsg), 3)})`,
        gateway: spread(results.map((r) => r.perS)),
        ceiling: `${spread(sqlite.map((r) => r.perS))} msg/s one SQLite node (${spread(sqlite.map((r) => r.cpuPerMsg), 3)} CPU ms/msg)`,
        ratio: spread(ratios(results.map((r) => r.perS), sqlite.map((r) => r.perS)), 2),
        target: "",
      });
    }
  } finally {
    await sink.stop();
  }
  return rows;
}

/**
 * A node that claimed messages dies: its claims (made by the store's own claimDue, as a node does before
 * it submits) stop being renewed. A compiled node on the same database takes them over.
 */
async function takeoverSection(server: PostgresServer): Promise<Row[]> {
  const sink = await startCountingSink();
  const n = quick ? 50 : 200;
  const fromDeath: number[] = [];
  const fromExpiry: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const url = await server.createDatabase(`bench_takeover_${run}`);
      await sink.reset();
      const dying = await PostgresStore.open({ now: Date.now, retryBaseMs: 1000, retryMaxMs: 60_000, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy: "at-most-once", url, nodeId: "dying", poolSize: 2 });
      const payload = { from: "18885551234", to: "12025550123", subject: "", text: "hi", fallback_text: "", media: [], custom_data: "", callback_url: sink.url, metadata: null };
      await Promise.all(Array.from({ length: n }, (_, i) => dying.accept({ accountId: "acme", requestId: `t${run}-${i}`, channel: "sms", payload, bodyHash: "h", expiresAt: Date.now() + 3_600_000 })));
      const claimed = (await dying.claimDue("sms", n)).length;
      if (claimed !== n) throw new Error(`the dying node claimed ${claimed} of ${n}`);
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      const [lease] = await sql`SELECT MAX(lease_until) AS until FROM messages WHERE lease_node = 'dying'`;
      await sql.end();
      // Started after the claims, so all of them are the dying node's.
      const survivor = await startNode(url, "survivor", {});
      try {
        await dying.close(); // dead: no heartbeat renews its leases from here
        const died = Date.now();
        const s = await sink.waitFor(n, 60_000, 30_000);
        if (s.events < n) throw new Error(`take-over: ${s.events} of ${n} final events arrived`);
        fromDeath.push(s.last - died);
        fromExpiry.push(s.last - (lease!.until as number));
        console.error(`postgres take-over run ${run}: all ${n} final ${fmtN(fromDeath.at(-1)!)} ms after its death, ${fmtN(fromExpiry.at(-1)!)} ms after its lease ran out`);
      } finally {
        await survivor.stop();
      }
    }
  } finally {
    await sink.stop();
  }
  const label = `take-over of a dead node's claims (${n} messages, lease 10 s)`;
  return [
    { bench: label, figure: "death → last final event at the webhook, ms", gateway: spread(fromDeath), ceiling: "10,000 (the lease)", ratio: "", target: "" },
    { bench: label, figure: "lease expiry → last final event, ms", gateway: spread(fromExpiry), ceiling: "3,333 (heartbeat: a third of the lease)", ratio: "", target: "" },
  ];
}

const parts = { accept: acceptSection, nodes: nodesSection, takeover: takeoverSection };

/** One section of `make bench` on PostgreSQL (postgres-accept, -nodes, -takeover), on a server of its own. */
export async function benchPostgres(part: keyof typeof parts): Promise<Row[]> {
  const server = await startPostgres();
  try {
    return await parts[part](server);
  } finally {
    await server.stop();
  }
}

if (import.meta.main) {
  const { printRows } = await import("./lib/figures.ts");
  const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim());
  const rows: Row[] = [];
  for (const part of Object.keys(parts) as (keyof typeof parts)[]) if (!only || only.includes(`postgres-${part}`)) rows.push(...(await benchPostgres(part)));
  printRows(rows);
}
