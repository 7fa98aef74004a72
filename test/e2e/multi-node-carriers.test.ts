// Compiled gateways on one PostgreSQL with real carriers: the SMSC simulator over TCP and the MMSC stub
// over HTTP. The SMSC's bind limit holds for the cluster and a killed node's binds are taken over; a
// receipt reaching a node that did not submit ends in one webhook with the message's custom_data.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { ACME_SECRET, deepMerge, MM7_INBOUND, post, sendBody, tempDir, testConfigDoc, waitFor } from "../support/app.ts";
import { configFor, freePort, killNodes, startBinary, startNodes, type Running } from "../support/binary.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { startMmscStub, type MmscStub } from "../peers/mm7-stub.ts";
import { startSmsc, type Smsc } from "../peers/smpp-sim.ts";

const finals = new Set(["delivered", "failed", "sent"]);
interface Link {
  name: string;
  state: string;
  detail: string;
}

async function links(node: Running): Promise<Link[]> {
  return ((await (await fetch(`${node.url}/readyz`)).json()) as { carriers: Link[] }).carriers.filter((l) => l.name.startsWith("sms:"));
}

/** A node on the shared database, with the SMSC's two binds leased across the nodes (short leases). */
function nodeConfig(db: TestDatabase, smsc: Smsc, name: string, extra: Record<string, unknown> = {}): string {
  const dir = tempDir();
  const sms = { kind: "smpp", host: "127.0.0.1", port: smsc.port, binds: 2, tps: 0, reconnect_min_ms: 50, reconnect_max_ms: 200, response_timeout_ms: 2000 };
  return configFor(
    dir,
    testConfigDoc(dir, deepMerge({ log: { level: "warn" }, store: { kind: "postgres", url: db.url }, node: { id: name, lease_ms: 1500 }, carriers: { sms } }, extra)),
  );
}

describe.skipIf(!pgAvailable)("several gateways, one SMSC bind limit (compiled binary)", () => {
  let db: TestDatabase;
  let sink: Sink;
  let smsc: Smsc;
  const nodes: Running[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    sink = startSink(ACME_SECRET);
    smsc = await startSmsc({ sendReceipts: true });
    nodes.push(...(await startNodes(["b1", "b2", "b3"], (n) => nodeConfig(db, smsc, n))));
  }, 60_000);

  afterAll(async () => {
    await killNodes(nodes);
    sink?.stop();
    await smsc?.stop();
    await db?.drop();
  }, 60_000);

  const finalsOf = (id: string) => sink.byMessage(id).filter((e) => finals.has(e.status));
  const sms = () => sendBody({ callback_url: sink.url, subject: undefined, fallback_text: undefined });

  async function sendTo(alive: Running[], n: number): Promise<string[]> {
    const ids: string[] = [];
    // Bounded: n requests, 4 at a time.
    for (let i = 0; i < n; i += 4) {
      const answers = await Promise.all(Array.from({ length: 4 }, (_, k) => post(alive[(i + k) % alive.length]!.url, "/sms", sms())));
      for (const a of answers) {
        expect(a.status).toBe(200);
        ids.push(a.json.id);
      }
    }
    return ids;
  }

  test("three nodes never hold more binds than the SMSC allows; a killed holder's bind is taken over and traffic goes on", async () => {
    // Settled: two binds, one at each of two nodes; the third stands by, and says who holds them.
    const holdsOne = async (n: Running) => (await links(n)).filter((l) => l.state === "up").length === 1;
    await waitFor("two nodes bound once each", async () => smsc.boundNow === 2 && (await Promise.all(nodes.map(holdsOne))).filter(Boolean).length === 2, 20_000);
    const standbyIndex = (await Promise.all(nodes.map(holdsOne))).indexOf(false);
    const standby = nodes[standbyIndex]!;
    const view = await links(standby);
    expect(view.map((l) => l.state)).toEqual(["standby", "standby"]);
    expect(view.map((l) => l.detail).join(" ")).toMatch(/held by node b\d.*held by node b\d/);
    expect((await fetch(`${standby.url}/readyz`)).status).toBe(200);

    const before = await sendTo(nodes, 40);
    await waitFor("a final event for each", () => before.every((id) => finalsOf(id).length === 1), 30_000);

    const victim = nodes.find((_, i) => i !== standbyIndex)!;
    victim.proc.kill("SIGKILL");
    await victim.proc.exited;
    const alive = nodes.filter((n) => n !== victim);
    const after = await sendTo(alive, 40);
    await waitFor("the standby node took the dead node's bind", async () => smsc.boundNow === 2 && (await holdsOne(standby)), 20_000);
    await waitFor("a final event for each sent after the kill", () => after.every((id) => finalsOf(id).length >= 1), 30_000);
    await Bun.sleep(300);
    expect([...before, ...after].filter((id) => finalsOf(id).length !== 1)).toEqual([]);
    expect(after.filter((id) => finalsOf(id)[0]!.status !== "delivered")).toEqual([]);
    // Never more binds at once than the SMSC allows, through start-up, the kill and the take-over.
    expect(smsc.maxBound).toBe(2);
  }, 120_000);
});

describe.skipIf(!pgAvailable)("a receipt at the node that did not submit (compiled binary)", () => {
  let db: TestDatabase;
  let sink: Sink;
  let smsc: Smsc;
  let mmsc: MmscStub;
  let submitter: Running;
  let other: Running;

  beforeAll(async () => {
    db = await createTestDatabase();
    sink = startSink(ACME_SECRET);
    smsc = await startSmsc({ sendReceipts: false });
    mmsc = await startMmscStub();
    // Only the submitter dispatches: the other node takes requests and receipts only.
    const config = (name: string, paused: boolean) =>
      nodeConfig(db, smsc, name, { delivery: { paused }, carriers: { mms: { kind: "mm7", url: mmsc.url } }, inbound: { mm7: MM7_INBOUND } });
    [submitter, other] = await Promise.all([startBinary(config("r1", false), freePort()), startBinary(config("r2", true), freePort())]);
    // Each node holds one of the two binds.
    await waitFor("a bind at each node", async () => smsc.boundNow === 2 && (await links(submitter)).some((l) => l.state === "up") && (await links(other)).some((l) => l.state === "up"), 20_000);
  }, 60_000);

  afterAll(async () => {
    await killNodes([submitter, other]);
    sink?.stop();
    await smsc?.stop();
    await mmsc?.stop();
    await db?.drop();
  }, 60_000);

  test("SMPP: submitted on one node's bind, deliver_sm on the other node's bind; one webhook with the custom_data", async () => {
    const r = await post(other.url, "/sms", sendBody({ callback_url: sink.url, subject: undefined, fallback_text: undefined, custom_data: "smpp-across=1" }));
    expect(r.status).toBe(200);
    await waitFor("the submit", () => smsc.submits.length === 1, 15_000);
    const submit = smsc.submits[0]!;
    const otherConnection = smsc.boundConnections().find((c) => c !== submit.connection)!;
    expect(otherConnection).toBeDefined();
    expect(await smsc.sendReceipt({ id: submit.receiptId!, from: submit.destAddr }, otherConnection)).toBe(0);
    await waitFor("the final event", () => sink.byMessage(r.json.id).some((e) => e.status === "delivered"), 15_000);
    await Bun.sleep(300);
    expect(sink.byMessage(r.json.id).map((e) => [e.status, e.custom_data])).toEqual([["delivered", "smpp-across=1"]]);
  }, 30_000);

  test("MM7: submitted by one node, DeliveryReportReq posted to the other node's /mm7; one webhook with the custom_data", async () => {
    const r = await post(submitter.url, "/mms", sendBody({ callback_url: sink.url, custom_data: "mm7-across=1" }));
    expect(r.status).toBe(200);
    await waitFor("the SubmitReq", () => mmsc.received.length === 1, 15_000);
    const sql = postgres(db.url, { max: 1 });
    let carrierId: string;
    try {
      const row = await waitFor("the submit answer stored", async () => (await sql`SELECT carrier_id FROM carrier_ids WHERE message_id = ${r.json.id}`)[0], 15_000);
      carrierId = row.carrier_id as string;
    } finally {
      await sql.end();
    }
    expect((await mmsc.sendDeliveryReport(`${other.url}/mm7`, { messageId: carrierId, status: "Retrieved", ...MM7_INBOUND })).status).toBe(200);
    await waitFor("the final event", () => sink.byMessage(r.json.id).some((e) => e.status === "delivered"), 15_000);
    await Bun.sleep(300);
    expect(sink.byMessage(r.json.id).map((e) => [e.status, e.custom_data])).toEqual([["delivered", "mm7-across=1"]]);
  }, 30_000);
});
