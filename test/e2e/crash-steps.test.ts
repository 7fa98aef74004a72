// kill -9 of the compiled gateway at each step of a message's journey, held there deterministically by
// the real peers (no failpoints in the product): accepted but not submitted; SubmitReq sent, no answer;
// answered, no report; report stored, webhook not sent; webhook received, its answer not. After each
// restart the message gets exactly one final event and, under the default policy, one submit at most.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { ACME_SECRET, MM7_INBOUND, post, sendBody, tempDir, testConfigDoc, waitFor } from "../support/app.ts";
import { configFor, freePort, startBinary, type Running } from "../support/binary.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { untilIdle } from "../support/idle.ts";
import { startMmscStub, type MmscStub, type StubReply } from "../peers/mm7-stub.ts";

let mmsc: MmscStub;
let sink: Sink;
let reply: StubReply = { kind: "ok" };
let counter = 0;

beforeAll(async () => {
  sink = startSink(ACME_SECRET);
  mmsc = await startMmscStub({ scenario: () => (reply.kind === "ok" ? { kind: "ok", messageId: `mmsc-${++counter}` } : reply) });
});
afterAll(async () => {
  await mmsc.stop();
  sink.stop();
});

function gatewayConfig(dir: string, extra: Record<string, unknown> = {}): string {
  return configFor(
    dir,
    testConfigDoc(dir, {
      log: { level: "warn" },
      carriers: { mms: { kind: "mm7", url: mmsc.url, timeout_ms: 60000 }, sms: { kind: "sandbox", sandbox_report_delay_ms: 20 } },
      inbound: { mm7: MM7_INBOUND },
      ...extra,
    }),
  );
}

const kill = async (gw: Running) => {
  gw.proc.kill("SIGKILL");
  await gw.proc.exited;
};
const row = (dir: string, id: string) => {
  const db = new Database(join(dir, "gateway.db"), { readonly: true });
  try {
    return db.query("SELECT state, last_error FROM messages WHERE id = ?").get(id) as { state: string; last_error: string | null };
  } finally {
    db.close();
  }
};
const submitsFor = (to: string) => mmsc.received.filter((s) => s.to[0]?.value.includes(to)).length;
const carrierIdOf = (dir: string, id: string) => {
  const db = new Database(join(dir, "gateway.db"), { readonly: true });
  try {
    return (db.query("SELECT carrier_id FROM carrier_ids WHERE message_id = ?").get(id) as { carrier_id: string }).carrier_id;
  } finally {
    db.close();
  }
};

async function journey(step: string, hold: (ctx: { dir: string; gw: Running; id: string; to: string }) => Promise<void>, release: (ctx: { dir: string; gw: Running; id: string; to: string }) => Promise<void>) {
  const dir = tempDir(`gw-step-${step}-`);
  const port = freePort();
  const to = `00120255${String(++counter).padStart(5, "0")}50`;
  const config = gatewayConfig(dir);
  let gw = await startBinary(config, port);
  const r = await post(gw.url, "/mms", sendBody({ to, callback_url: sink.url }));
  expect(r.status).toBe(200);
  const ctx = { dir, gw, id: r.json.id as string, to: to.slice(2) };
  await hold(ctx);
  await kill(gw);
  gw = await startBinary(config, port);
  ctx.gw = gw;
  try {
    await release(ctx);
    const events = await waitFor(`final event after a crash ${step}`, () => sink.byMessage(ctx.id).length > 0 && sink.byMessage(ctx.id), 30000);
    await untilIdle(join(dir, "gateway.db"), [ctx.id]); // a second final event would have been posted by now
    expect(sink.byMessage(ctx.id)).toHaveLength(1);
    return { events, submits: submitsFor(ctx.to), state: row(dir, ctx.id) };
  } finally {
    gw.proc.kill("SIGTERM");
    await gw.proc.exited;
  }
}

test("between accept and submit: submitted once after the restart, delivered", async () => {
  // Paused delivery holds the message accepted; the restart runs without the pause.
  const dir = tempDir("gw-step-accept-");
  const port = freePort();
  const to = `00120255${String(++counter).padStart(5, "0")}50`;
  let gw = await startBinary(gatewayConfig(dir, { delivery: { paused: true } }), port);
  const r = await post(gw.url, "/mms", sendBody({ to, callback_url: sink.url }));
  await kill(gw);
  gw = await startBinary(gatewayConfig(dir), port);
  try {
    await waitFor("SubmitReq", () => submitsFor(to.slice(2)) === 1);
    const cid = await waitFor("carrier id", () => {
      try {
        return carrierIdOf(dir, r.json.id);
      } catch {
        return null;
      }
    });
    expect((await mmsc.sendDeliveryReport(`${gw.url}/mm7`, { messageId: cid, status: "Retrieved", ...MM7_INBOUND })).status).toBe(200);
    await waitFor("event", () => sink.byMessage(r.json.id).length === 1);
    await untilIdle(join(dir, "gateway.db"), [r.json.id]);
    expect(sink.byMessage(r.json.id)).toHaveLength(1);
    expect(sink.byMessage(r.json.id)[0]!.status).toBe("delivered");
    expect(submitsFor(to.slice(2))).toBe(1);
  } finally {
    gw.proc.kill("SIGTERM");
    await gw.proc.exited;
  }
});

test("between SubmitReq and its answer: not resent (at-most-once), failed gateway:in_flight_unknown", async () => {
  const out = await journey(
    "submit",
    async ({ to }) => {
      reply = { kind: "hang" };
      await waitFor("SubmitReq on the wire", () => submitsFor(to) === 1);
    },
    async () => {
      reply = { kind: "ok" };
    },
  );
  expect(out.events[0]).toMatchObject({ status: "failed", error: { code: "gateway:in_flight_unknown" } });
  expect(out.submits).toBe(1);
});

test("between the answer and the report: the report after the restart delivers it", async () => {
  const out = await journey(
    "answer",
    async ({ dir, id }) => {
      await waitFor("submitted", () => row(dir, id)?.state === "submitted");
    },
    async ({ dir, gw, id }) => {
      expect((await mmsc.sendDeliveryReport(`${gw.url}/mm7`, { messageId: carrierIdOf(dir, id), status: "Retrieved", ...MM7_INBOUND })).status).toBe(200);
    },
  );
  expect(out.events[0]!.status).toBe("delivered");
  expect(out.submits).toBe(1);
});

test("between the stored report and the webhook: the event goes out after the restart", async () => {
  const out = await journey(
    "report",
    async ({ dir, gw, id }) => {
      sink.answer = 503;
      await waitFor("submitted", () => row(dir, id)?.state === "submitted");
      expect((await mmsc.sendDeliveryReport(`${gw.url}/mm7`, { messageId: carrierIdOf(dir, id), status: "Retrieved", ...MM7_INBOUND })).status).toBe(200);
      expect(row(dir, id).state).toBe("delivered");
    },
    async () => {
      sink.answer = 200;
    },
  );
  expect(out.events[0]!.status).toBe("delivered");
  expect(out.submits).toBe(1);
});

test("webhook received but its answer not: sent again with the same event_id (one distinct event)", { timeout: 60000 }, async () => {
  const before = sink.redelivered;
  const out = await journey(
    "webhook",
    async ({ dir, gw, id }) => {
      sink.delayMs = 60000; // the sink records the event, then holds its answer
      await waitFor("submitted", () => row(dir, id)?.state === "submitted");
      await mmsc.sendDeliveryReport(`${gw.url}/mm7`, { messageId: carrierIdOf(dir, id), status: "Retrieved", ...MM7_INBOUND });
      await waitFor("webhook received", () => sink.byMessage(id).length === 1);
    },
    async () => {
      sink.delayMs = 0;
    },
  );
  expect(out.events[0]!.status).toBe("delivered");
  await waitFor("redelivery", () => sink.redelivered > before, 30000);
  expect(out.submits).toBe(1);
});
