// Three compiled gateways on one PostgreSQL under a mixed MMS/SMS load, with kill -9 of a seeded random
// node at seeded random moments (each restarted on its port after a while). Reports come back to
// whichever node is up (MM7 posts; SMPP receipts on any live bind). Checks: every 200 stored once, no
// request at a carrier twice, exactly one final event per message, nothing lost, and the SMSC never
// sees more binds than `binds` (leased across the nodes, taken over after a kill).
import { afterAll, expect, test } from "bun:test";
import postgres from "postgres";
import { freePort, type Running } from "../support/binary.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { ACME_SECRET, carrierConfigDoc, FINAL, FULL, intIn, rng, SEED, startCarriers, startGateway, stopGateway, summary, tempDir, until, type Carriers, Offers } from "./harness.ts";

const NODES = 3;
const BINDS = 2;
const ROUNDS = FULL ? 10 : 2;
const MAX_REQUESTS = FULL ? 3000 : 400;
const WORKERS = 8;

let sink: Sink;
let carriers: Carriers;
let db: TestDatabase;
const running: (Running | null)[] = [];
afterAll(async () => {
  await Promise.all(running.map((g) => stopGateway(g)));
  await carriers?.stop();
  sink?.stop();
  await db?.drop();
}, 60_000);

test.skipIf(!pgAvailable)(`multi-node: kill -9 × ${ROUNDS} of one of ${NODES} nodes under mixed MMS/SMS load`, async () => {
  const r = rng(SEED);
  db = await createTestDatabase();
  sink = startSink(ACME_SECRET);
  const ports = Array.from({ length: NODES }, () => freePort());
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const alive = () => urls.filter((_, i) => running[i]);
  let turn = 0;
  carriers = await startCarriers({ gatewayUrl: () => alive()[turn++ % Math.max(1, alive().length)] ?? urls[0]!, reportDelayMs: 100 });
  const docs = ports.map((_, i) => {
    const dir = tempDir("gw-chaos-nodes-");
    return {
      dir,
      doc: carrierConfigDoc(dir, carriers.mmscUrl, carriers.smsc.port, {
        store: { kind: "postgres", url: db.url },
        node: { id: `c${i + 1}`, lease_ms: 1500 },
        carriers: { sms: { binds: BINDS } },
      }),
    };
  });
  const start = async (i: number) => {
    running[i] = await startGateway(docs[i]!.dir, docs[i]!.doc, ports[i]!);
  };
  await Promise.all(ports.map((_, i) => start(i)));

  // ---- load: a unique recipient per request, so a duplicate at a carrier is attributable ----
  let made = 0;
  let loading = true;
  let making = true;
  const offers = new Offers();
  const { acked, retry } = offers;
  const make = () => {
    const n = ++made;
    const kind = r();
    const path = kind > 0.55 ? "/sms" : "/mms";
    // 77 endings: the MMSC says "cannot take MMS" → the fallback SMS.
    let to = kind < 0.1 ? `1209${String(n).padStart(5, "0")}77` : `1202${String(n).padStart(7, "0")}`;
    if (kind >= 0.1 && to.endsWith("77")) to = `1203${String(n).padStart(7, "0")}`.replace(/77$/, "78"); // 1203… is used only here
    const body: Record<string, unknown> = { to: `00${to}`, from: "18885551234", text: `nodes ${n}`, request_id: `nodes-${SEED}-${n}`, custom_data: `n=${n}`, callback_url: sink.url };
    if (path === "/mms") Object.assign(body, { subject: "nodes", fallback_text: `fallback ${n}` });
    return { path, body };
  };
  const worker = async () => {
    while (loading) {
      const req = retry.shift() ?? (making && made < MAX_REQUESTS ? make() : null);
      const targets = alive();
      if (!req || targets.length === 0) {
        if (req) retry.push(req);
        await Bun.sleep(20);
        continue;
      }
      await offers.offer(targets[intIn(r, 0, targets.length - 1)]!, req);
    }
  };
  const started = Date.now();
  const workers = Array.from({ length: WORKERS }, worker);

  const killed: string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await Bun.sleep(intIn(r, 300, FULL ? 2000 : 1000));
    const victim = intIn(r, 0, NODES - 1);
    const g = running[victim]!;
    running[victim] = null;
    g.proc.kill("SIGKILL");
    await g.proc.exited;
    killed.push(`c${victim + 1}`);
    // Down for a while: past its leases half the time, so the others take its claims and binds over.
    await Bun.sleep(intIn(r, 200, 3000));
    await start(victim);
  }
  making = false;
  await until("every request answered", () => retry.length === 0 && acked.size === made, FULL ? 240_000 : 90_000, 100).catch((e) => {
    throw new Error(`${(e as Error).message}: made=${made} acked=${acked.size} retry=${retry.length}`);
  });
  loading = false;
  await Promise.all(workers);

  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const all = await until(
      "every message final and its event delivered",
      async () => {
        const rows = (await sql`SELECT id, request_id, state, last_error FROM messages`).map((x) => ({ ...x }) as { id: string; request_id: string; state: string; last_error: string | null });
        return rows.every((x) => FINAL.has(x.state)) && rows.every((x) => sink.byMessage(x.id).length >= 1) ? rows : false;
      },
      FULL ? 240_000 : 90_000,
      200,
    );
    await Bun.sleep(1000); // a second final event would have been posted by now
    const storedOnce = [...acked].filter(([rid, id]) => all.filter((m) => m.request_id === rid).map((m) => m.id).join() === id).length;
    const multiFinal = all.filter((m) => sink.byMessage(m.id).filter((e) => FINAL.has(e.status)).length !== 1).length;
    const lost = all.filter((m) => sink.byMessage(m.id).length === 0).length;
    const inFlightFailed = all.filter((m) => m.state === "failed" && (m.last_error ?? "").includes("gateway:in_flight_unknown")).length;
    const otherFailed = all.filter((m) => m.state === "failed" && !(m.last_error ?? "").includes("gateway:in_flight_unknown")).length;
    const twice = (tos: string[]) => {
      const c = new Map<string, number>();
      for (const t of tos) c.set(t, (c.get(t) ?? 0) + 1);
      return [...c].filter(([, n]) => n > 1).map(([t]) => t);
    };
    const twiceMms = twice(carriers.mmsc.received.map((s) => (s.to[0]?.value ?? "").replace(/\D/g, "")));
    const twiceSms = twice(carriers.smsc.submits.map((s) => s.destAddr));
    for (const t of [...twiceMms, ...twiceSms].slice(0, 5)) {
      const rows = await sql`SELECT id, state, history, last_error FROM messages WHERE payload LIKE ${`%${t}%`}`;
      console.log(`at a carrier twice: ${t} ${JSON.stringify(rows)}`);
    }
    const dupMms = twiceMms.length;
    const dupSms = twiceSms.length;
    const states: Record<string, number> = {};
    for (const m of all) states[m.state] = (states[m.state] ?? 0) + 1;

    summary(
      `chaos: multi-node kill -9 nodes=${NODES} rounds=${ROUNDS} killed=${killed.join(",")} requests=${made} accepted=${acked.size} stored=${all.length} stored_once=${storedOnce} ` +
        `carrier_duplicates_mm7=${dupMms} carrier_duplicates_smpp=${dupSms} lost=${lost} multiple_final_events=${multiFinal} ` +
        `in_flight_failed=${inFlightFailed} other_failed=${otherFailed} smsc_max_binds=${carriers.smsc.maxBound}/${BINDS} smsc_binds_total=${carriers.smsc.binds.length} ` +
        `redelivered_webhooks=${sink.redelivered} no_answer_retried=${offers.noAnswer} non200_retried=${offers.non200} ` +
        `mm7_reports=${carriers.stats.mmReportsAcked}(+${carriers.stats.mmReportAttemptsFailed} failed attempts) ` +
        `smpp_receipts=${carriers.stats.smsReceiptsAcked}(+${carriers.stats.smsReceiptAttemptsFailed} failed attempts) ` +
        `states=${JSON.stringify(states)} elapsed_s=${Math.round((Date.now() - started) / 1000)}`,
    );

    expect(acked.size).toBe(made);
    expect(all.length).toBe(acked.size);
    expect(storedOnce).toBe(acked.size);
    expect(dupMms).toBe(0);
    expect(dupSms).toBe(0);
    expect(lost).toBe(0);
    expect(multiFinal).toBe(0);
    expect(otherFailed).toBe(0);
    expect(carriers.smsc.maxBound).toBeLessThanOrEqual(BINDS);
  } finally {
    await sql.end();
  }
}, 600_000);
