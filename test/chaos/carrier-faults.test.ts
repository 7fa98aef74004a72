// Carrier faults against the compiled binary. MMSC: refusing connections, losing its answers, answering
// 500 → the backlog grows, 429 with Retry-After from the high-water mark on, and every accepted message is
// delivered after recovery (or, after a lost answer, failed in doubt); a 200 with garbage is in doubt at
// once and never resent. SMSC: throttling (0x58), binds dropped mid-window, never answering. An answer
// that never came (the MMSC took the request but its answer is lost, an SMPP timeout, a dropped bind) is
// in doubt: under the default at-most-once policy the message ends failed gateway:in_flight_unknown and
// no recipient reaches a carrier twice (asserted, not just counted).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { freePort, type Running } from "../support/binary.ts";
import { untilIdle } from "../support/idle.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { ACME_SECRET, tempDir, carrierConfigDoc, FULL, postJson, readDb, startCarriers, startFront, startGateway, stopGateway, summary, until, type Carriers, type Front, type FrontMode } from "./harness.ts";

const HIGH_WATER = 25;
const HOLD_MS = FULL ? 6000 : 1500;

let sink: Sink;
let carriers: Carriers;
let front: Front;
let gw: Running;
let dir: string;
let seq = 0;
/** A fresh recipient; never ending in 77, which the MMSC stub answers "cannot take MMS". */
function nextTo(prefix: string): string {
  do seq++;
  while (seq % 100 === 77);
  return `${prefix}${String(seq).padStart(6, "0")}`;
}

beforeAll(async () => {
  dir = tempDir("gw-chaos-carrier-");
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  sink = startSink(ACME_SECRET);
  carriers = await startCarriers({ gatewayUrl: () => url, reportDelayMs: 50 });
  front = startFront(`http://127.0.0.1:${carriers.mmsc.port}`);
  const doc = carrierConfigDoc(dir, `${front.url}/mm7`, carriers.smsc.port, {
    limits: { queue_high_water: HIGH_WATER },
    delivery: { retry_base_ms: 100, retry_max_ms: 400 },
    carriers: { mms: { timeout_ms: 800 }, sms: { response_timeout_ms: 1000 } },
  });
  gw = await startGateway(dir, doc, port);
  await until("SMPP bound", () => carriers.smsc.openSessions > 0);
});

afterAll(async () => {
  await stopGateway(gw);
  front?.stop();
  await carriers?.stop();
  sink?.stop();
});

function body(path: "/mms" | "/sms", to: string): Record<string, unknown> {
  return {
    to: `00${to}`,
    from: "18885551234",
    text: `fault ${to}`,
    request_id: `fault-${to}`,
    callback_url: sink.url,
    ...(path === "/mms" ? { subject: "s", fallback_text: "" } : {}),
  };
}

/**
 * Waits until every message is final with exactly one event at the sink. A submit whose answer never
 * came (timeout, link lost) is "in doubt": under the default at-most-once policy it ends `failed` with
 * gateway:in_flight_unknown instead of being resent. Anything else but `delivered` is a failure.
 */
async function allFinal(ids: string[], timeoutMs = 60000): Promise<{ delivered: number; inDoubt: number; inDoubtIds: string[] }> {
  const rows = await until(
    `${ids.length} messages final`,
    () => {
      const rows = readDb(dir, (db) => ids.map((id) => db.query("SELECT id, state, last_error FROM messages WHERE id = ?").get(id) as { id: string; state: string; last_error: string | null }));
      return rows.every((r) => r.state === "delivered" || r.state === "failed") && ids.every((id) => sink.byMessage(id).length === 1) && rows;
    },
    timeoutMs,
    100,
  ).catch((e) => {
    const rows = readDb(dir, (db) => ids.map((id) => db.query("SELECT id, state, last_error FROM messages WHERE id = ?").get(id)));
    throw new Error(`${(e as Error).message}: ${JSON.stringify(rows.filter((r: any) => r.state !== "delivered").slice(0, 3))}`);
  });
  const inDoubt = rows.filter((r) => r.state === "failed" && (r.last_error ?? "").includes("gateway:in_flight_unknown"));
  const other = rows.filter((r) => r.state === "failed" && !(r.last_error ?? "").includes("gateway:in_flight_unknown"));
  expect(other.map((r) => r.last_error)).toEqual([]);
  await untilIdle(join(dir, "gateway.db"), ids);
  for (const id of ids) expect(sink.byMessage(id)).toHaveLength(1);
  return { delivered: rows.filter((r) => r.state === "delivered").length, inDoubt: inDoubt.length, inDoubtIds: inDoubt.map((r) => r.id) };
}

const mmsFaults: [string, FrontMode][] = [
  ["refused", { kind: "down" }],
  // The MMSC takes each SubmitReq but its answer never comes back: a resend would be a duplicate.
  ["hang", { kind: "swallow" }],
  ["http500", { kind: "status", status: 500, body: "Internal Server Error" }],
  ["garbage", { kind: "status", status: 200, body: "<<<\u0000 this is not SOAP ]]>", contentType: "text/xml" }],
];

for (const [name, mode] of mmsFaults) {
  test(`MMSC ${name}: backlog to the high-water mark, 429 with Retry-After, every message final once, none sent twice`, async () => {
    const t0 = Date.now();
    const fromReceived = carriers.mmsc.received.length;
    front.set(mode);
    const ids: string[] = [];
    let first429: { retryAfter: string | null; code: string } | null = null;
    for (let i = 0; i < HIGH_WATER * 4 && !first429; i++) {
      const to = nextTo("1310");
      const a = await postJson(`${gw.url}/mms`, body("/mms", to));
      if (a?.status === 200) ids.push(a.json.id);
      else if (a?.status === 429) first429 = { retryAfter: a.headers.get("retry-after"), code: a.json?.error?.code };
      else throw new Error(`unexpected answer ${a?.status} ${a?.text}`);
    }
    await Bun.sleep(HOLD_MS);
    // Still refused while the fault lasts: the backlog does not drain by itself.
    const during = await postJson(`${gw.url}/mms`, body("/mms", nextTo("1319")));
    const seenDuring = front.seen;
    const swallowed = front.swallowed;
    front.set({ kind: "pass" });
    const end = await allFinal(ids);
    const dup = [...carriers.mmsc.received.slice(fromReceived).reduce((m, s) => m.set(s.to[0]!.value, (m.get(s.to[0]!.value) ?? 0) + 1), new Map<string, number>()).values()].filter((c) => c > 1).length;
    front.swallowed = 0;
    summary(
      `chaos: mmsc ${name} hold_ms=${HOLD_MS} accepted_before_429=${ids.length} high_water=${HIGH_WATER} first_429=${JSON.stringify(first429)} ` +
        `during_fault_status=${during?.status} attempts_at_front=${seenDuring} answers_lost=${swallowed} delivered_after_recovery=${end.delivered}/${ids.length} in_doubt_failed=${end.inDoubt} mmsc_duplicates=${dup} elapsed_ms=${Date.now() - t0}`,
    );
    expect(dup).toBe(0);
    if (name === "garbage") {
      // A 200 nobody can read may be an accepted submit: each is in doubt at once, so at-most-once
      // fails it and nothing backs up (issue 11 item 9).
      expect(first429).toBeNull();
      expect(end.inDoubt).toBe(ids.length);
      return;
    }
    expect(ids.length).toBeGreaterThanOrEqual(HIGH_WATER - 2);
    if (name !== "hang") {
      expect(first429).not.toBeNull();
      expect(first429!.retryAfter).toBe("2"); // server.retry_after_s of the test config
      expect(first429!.code).toBe("queue_full");
      expect(ids.length).toBeLessThanOrEqual(HIGH_WATER);
      expect(during?.status).toBe(429);
    }
    // A lost answer ends its submit in doubt after timeout_ms, which drains the queue: intake opens
    // again while the fault lasts, so on a slow machine more than the mark get in before any 429.
    // Refused connections and readable HTTP errors leave no doubt: those are all delivered after recovery. A
    // hang is a timeout after the request went out: in doubt, so at-most-once fails it (counted).
    if (name !== "hang") {
      expect(end.delivered).toBe(ids.length);
      expect(end.inDoubt).toBe(0);
    } else {
      // Each lost answer is one message in doubt, failed and never resent; the rest went after recovery.
      expect(swallowed).toBeGreaterThan(0);
      expect(end.inDoubt).toBe(swallowed);
      expect(end.delivered).toBe(ids.length - swallowed);
    }
  }, 120000);
}

async function sendSms(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = await postJson(`${gw.url}/sms`, body("/sms", nextTo("1320")));
    expect(a?.status).toBe(200);
    ids.push(a!.json.id);
  }
  return ids;
}

/** Recipients the SMSC saw more than once: all submit_sm (`seen`), and those it accepted with an id twice (`accepted`). */
function smsDuplicates(from: number, refused: (n: number) => boolean = () => false): { seen: number; accepted: number } {
  const seen = new Map<string, number>();
  const accepted = new Map<string, number>();
  for (const s of carriers.smsc.submits.slice(from)) {
    seen.set(s.destAddr, (seen.get(s.destAddr) ?? 0) + 1);
    // The simulator assigns an id before deciding the status; a refused (throttled) submit took nothing.
    if (s.respId && !refused(s.n)) accepted.set(s.destAddr, (accepted.get(s.destAddr) ?? 0) + 1);
  }
  const over = (m: Map<string, number>) => [...m.values()].filter((c) => c > 1).length;
  return { seen: over(seen), accepted: over(accepted) };
}

test("SMSC throttling (every 3rd submit_sm gets 0x58): all delivered, none accepted twice", async () => {
  const from = carriers.smsc.submits.length;
  const n0 = carriers.smsc.submitCount;
  carriers.smscOptions.throttleEvery = 3;
  const ids = await sendSms(20);
  const end = await allFinal(ids);
  carriers.smscOptions.throttleEvery = undefined;
  const throttled = carriers.smsc.submits.slice(from).filter((s) => s.n % 3 === 0).length;
  const dup = smsDuplicates(from, (n) => n % 3 === 0);
  summary(`chaos: smsc throttle messages=${ids.length} submit_sm=${carriers.smsc.submitCount - n0} throttled_0x58=${throttled} delivered=${end.delivered}/${ids.length} submitted_again_after_0x58=${dup.seen} accepted_twice=${dup.accepted}`);
  // A throttled submit was refused, not taken: its resend is the same message's first real submit.
  expect(throttled).toBeGreaterThan(0);
  expect(dup.accepted).toBe(0);
  expect(end.delivered).toBe(ids.length);
}, 120000);

test("SMSC drops the bind mid-window: every message final once; those on the wire in doubt (at-most-once), none resent", async () => {
  const from = carriers.smsc.submits.length;
  const connections = carriers.smsc.connections;
  carriers.smscOptions.respondDelayMs = 500;
  const ids = await sendSms(15);
  await until("submits outstanding", () => carriers.smsc.submits.length - from >= 5, 10000, 10);
  carriers.smsc.dropAll();
  carriers.smscOptions.respondDelayMs = 0;
  const end = await allFinal(ids);
  const dup = smsDuplicates(from);
  summary(`chaos: smsc drop-mid-window messages=${ids.length} delivered=${end.delivered}/${ids.length} in_doubt_failed=${end.inDoubt} resent_after_link_loss=${dup.seen} accepted_twice=${dup.accepted}`);
  // At least the 5 outstanding submits were on the wire when the bind dropped: in doubt, not resent.
  expect(end.inDoubt).toBeGreaterThanOrEqual(5);
  expect(end.delivered + end.inDoubt).toBe(ids.length);
  expect(dup.seen).toBe(0);
  expect(dup.accepted).toBe(0);
  // The messages can all end (in doubt) before the gateway's reconnect: wait for it, then prove the link works.
  await until("re-bound", () => carriers.smsc.connections > connections && carriers.smsc.openSessions > 0, 10000);
  const after = await allFinal(await sendSms(3));
  expect(after.delivered).toBe(3);
}, 120000);

test("SMSC never answers submit_sm: every message times out, in doubt (at-most-once), none resent; final once", async () => {
  const from = carriers.smsc.submits.length;
  carriers.smscOptions.neverAnswer = true;
  const ids = await sendSms(8);
  await Bun.sleep(HOLD_MS + 1200);
  carriers.smscOptions.neverAnswer = false;
  const end = await allFinal(ids);
  const dup = smsDuplicates(from);
  const timeouts = readDb(dir, (db) => ids.filter((id) => String((db.query("SELECT history FROM messages WHERE id = ?").get(id) as { history: string }).history).includes("smpp:timeout")).length);
  summary(`chaos: smsc never-answer messages=${ids.length} timed_out=${timeouts} delivered=${end.delivered}/${ids.length} in_doubt_failed=${end.inDoubt} resent_after_timeout=${dup.seen} accepted_twice=${dup.accepted}`);
  // Every submit went out while the SMSC stayed silent past response_timeout_ms: all in doubt, none resent.
  expect(timeouts).toBe(ids.length);
  expect(end.inDoubt).toBe(ids.length);
  expect(end.delivered).toBe(0);
  expect(dup.seen).toBe(0);
  expect(dup.accepted).toBe(0);
}, 120000);
