// Webhook faults against the compiled binary: the sink down, slow, answering 500 or 401 → retried and
// delivered later; other 4xx → dead letters, kept and listable (events in state `dead`).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { freePort, type Running } from "../support/binary.ts";
import { untilIdle } from "../support/idle.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { ACME_SECRET, FULL, postJson, readDb, startFront, startGateway, stopGateway, summary, tempDir, testConfigDoc, until, type Front, type FrontMode } from "./harness.ts";

const HOLD_MS = FULL ? 5000 : 1200;
let sink: Sink;
let front: Front;
let gw: Running;
let dir: string;
let n = 0;

beforeAll(async () => {
  dir = tempDir("gw-chaos-webhook-");
  sink = startSink(ACME_SECRET);
  front = startFront(new URL(sink.url).origin);
  gw = await startGateway(dir, testConfigDoc(dir, { webhooks: { timeout_ms: 700, retry_base_ms: 100, retry_max_ms: 400 } }), freePort());
});
afterAll(async () => {
  await stopGateway(gw);
  front?.stop();
  sink?.stop();
});

async function send(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const a = await postJson(`${gw.url}/sms`, { to: `0014155${String(++n).padStart(6, "0")}`, from: "18885551234", text: "hi", request_id: `wh-${n}`, custom_data: `wh=${n}`, callback_url: `${front.url}/callback` });
    expect(a?.status).toBe(200);
    ids.push(a!.json.id);
  }
  return ids;
}

const retried: [string, FrontMode][] = [
  ["down", { kind: "down" }],
  ["slow-beyond-timeout", { kind: "slow", ms: 1500 }],
  ["http500", { kind: "status", status: 500 }],
  ["http401", { kind: "status", status: 401 }],
  ["http429", { kind: "status", status: 429 }],
];

for (const [name, mode] of retried) {
  test(`sink ${name}: retried, then delivered once`, async () => {
    front.set(mode);
    const before = front.seen;
    const ids = await send(10);
    await Bun.sleep(HOLD_MS);
    const attempts = front.seen - before;
    const delivered = ids.filter((id) => sink.byMessage(id).length > 0).length;
    front.set({ kind: "pass" });
    await until("all delivered", () => ids.every((id) => sink.byMessage(id).length === 1), 30000);
    await untilIdle(join(dir, "gateway.db"), ids);
    for (const id of ids) expect(sink.byMessage(id)).toHaveLength(1); // once per event_id, redeliveries deduped
    const dead = readDb(dir, (db) => (db.query("SELECT COUNT(*) AS n FROM events WHERE state = 'dead'").get() as { n: number }).n);
    summary(`chaos: webhook ${name} events=${ids.length} attempts_during_fault=${attempts} delivered_during_fault=${delivered} delivered_after=${ids.length}/${ids.length} redelivered_total=${sink.redelivered} dead_total=${dead}`);
    if (mode.kind !== "slow") expect(delivered).toBe(0);
    if (mode.kind !== "down") expect(attempts).toBeGreaterThan(0);
    expect(dead).toBe(0);
  }, 60000);
}

test("sink slow but within the timeout: delivered directly", async () => {
  front.set({ kind: "slow", ms: 300 });
  const ids = await send(5);
  await until("delivered while slow", () => ids.every((id) => sink.byMessage(id).length === 1), 30000);
  front.set({ kind: "pass" });
  summary(`chaos: webhook slow-within-timeout events=${ids.length} delivered=${ids.length}/${ids.length}`);
});

for (const status of [400, 403, 404, 410, 422]) {
  test(`sink answers ${status}: dead-lettered, listed, not retried`, async () => {
    front.set({ kind: "status", status });
    const before = front.seen;
    const ids = await send(3);
    const dead = await until(
      "dead letters",
      () => {
        const rows = readDb(dir, (db) =>
          ids.map((id) => db.query("SELECT seq, event_id, message_id, state, attempts, last_error FROM events WHERE message_id = ? AND state = 'dead'").get(id)),
        );
        return rows.every(Boolean) && rows;
      },
      20000,
    );
    const attempts = front.seen - before;
    await Bun.sleep(800);
    const later = front.seen - before;
    front.set({ kind: "pass" });
    summary(`chaos: webhook http${status} events=${ids.length} dead_lettered=${dead.length} posts=${attempts} posts_after_0.8s=${later} last_error=${JSON.stringify((dead[0] as any).last_error)}`);
    expect(dead).toHaveLength(3);
    expect(later).toBe(attempts); // not retried
    for (const id of ids) expect(sink.byMessage(id)).toHaveLength(0);
  }, 60000);
}
