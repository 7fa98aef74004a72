// The whole journey with real protocol peers: the gateway (in process) ↔ MMSC stub over MM7/HTTP and
// SMSC simulator over SMPP/TCP, webhooks to a JWT-verifying sink. All on loopback.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { App } from "../../src/app.ts";
import { ACME_KEY, ACME_SECRET, post, sendBody, sqlite, startTestApp, waitFor } from "../support/app.ts";
import { scrape } from "../support/metrics.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { untilIdle } from "../support/idle.ts";
import { startMmscStub, type MmscStub } from "../peers/mm7-stub.ts";
import { startSmsc, type Smsc } from "../peers/smpp-sim.ts";

let app: App & { dir: string };
let mmsc: MmscStub;
let smsc: Smsc;
let sink: Sink;
let inboundSink: Sink;
let media: ReturnType<typeof Bun.serve>;
const image = new Uint8Array(100 * 1024).map((_, i) => (i * 7919) % 256);
image.set([0xff, 0xd8, 0xff, 0xe0], 0);
let mmscMessageCounter = 0;
const mediaFetches = new Map<string, number>();

beforeAll(async () => {
  sink = startSink(ACME_SECRET);
  inboundSink = startSink(ACME_SECRET);
  media = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => {
      mediaFetches.set(new URL(req.url).pathname, (mediaFetches.get(new URL(req.url).pathname) ?? 0) + 1);
      return new Response(image, { headers: { "content-type": "image/jpeg", etag: '"v1"' } });
    },
  });
  mmsc = await startMmscStub({
    username: "vasp",
    password: "secret",
    scenario: (req) => {
      const to = req.to[0]?.value ?? "";
      // Recipients ending in 77: the MMSC says this number cannot get MMS (2002 → fallback).
      if (to.endsWith("77")) return { kind: "status", code: 2002, text: "Address Error" };
      return { kind: "ok", messageId: `mmsc-${++mmscMessageCounter}` };
    },
  });
  smsc = await startSmsc({ sendReceipts: true, receiptDelayMs: 20, idBase: "dec" });
  app = await startTestApp({
    accounts: [{ id: "acme", headers: { "Chan-Api-Key": ACME_KEY }, callback_secret: ACME_SECRET, inbound_url: inboundSink.url }],
    carriers: {
      mms: { kind: "mm7", url: mmsc.url, username: "vasp", password: "secret", vaspid: "VASP1", vasid: "VAS1", service_code: "SC1" },
      // Room for one 140-octet MO part: the concatenated MO test below fills it.
      sms: { kind: "smpp", host: "127.0.0.1", port: smsc.port, system_id: "gw", password: "pw", tps: 1000, reconnect_min_ms: 100, reconnect_max_ms: 500, mo_reassembly_max_bytes: 200 },
    },
    inbound: { mm7: { path: "/mm7", username: "mmsc", password: "in-secret" } },
  });
  await waitFor("SMPP bound", () => smsc.openSessions > 0);
});

afterAll(async () => {
  await app.stop();
  await mmsc.stop();
  await smsc.stop();
  sink.stop();
  inboundSink.stop();
  media.stop(true);
});

describe("MMS over MM7", () => {
  test("POST /mms → SubmitReq (media bytes identical) → DeliveryReportReq → signed webhook with custom_data", async () => {
    const body = sendBody({ to: "0012025550123", callback_url: sink.url, custom_data: "cd-mm7-1", media: { url: `http://127.0.0.1:${media.port}/promo.jpg` } });
    const r = await post(app.url, "/mms", body);
    expect(r.status).toBe(200);
    const submit = await waitFor("SubmitReq", () => mmsc.received.find((s) => s.to[0]?.value.includes("12025550123")));
    expect(mmsc.errors).toEqual([]);
    expect(submit.vaspid).toBe("VASP1");
    expect(submit.subject).toBe(body.subject as string);
    expect(submit.text).toBe(body.text as string);
    expect(submit.media).toHaveLength(1);
    expect(Buffer.from(submit.media[0]!.bytes).equals(Buffer.from(image))).toBe(true);
    expect(submit.http.contentLength).toBe(String(Number(submit.http.contentLength)));
    expect(submit.http.transferEncoding).toBeNull();

    const messageId = await waitFor("submitted", async () => {
      const d = (await app.store.describe(r.json.id)) as { state: string; carrierIds: { carrier_id: string }[] } | null;
      return d?.state === "submitted" && d.carrierIds[0]?.carrier_id;
    });
    const answer = await mmsc.sendDeliveryReport(`${app.url}/mm7`, { messageId, status: "Retrieved", username: "mmsc", password: "in-secret" });
    expect(answer.status).toBe(200);
    expect(answer.body).toContain("1000");
    const events = await waitFor("webhook", () => sink.byMessage(r.json.id).length > 0 && sink.byMessage(r.json.id));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: "delivered", channel: "mms", custom_data: "cd-mm7-1", carrier_message_id: messageId });

    // The MMSC retries its report: answered 1000 again, no second event.
    const again = await mmsc.sendDeliveryReport(`${app.url}/mm7`, { messageId, status: "Retrieved", username: "mmsc", password: "in-secret" });
    expect(again.status).toBe(200);
    await untilIdle(sqlite(app.store).db, [r.json.id]);
    expect(sink.byMessage(r.json.id)).toHaveLength(1);
  });

  test("the MMSC's report endpoint requires its Basic credentials", async () => {
    const answer = await mmsc.sendDeliveryReport(`${app.url}/mm7`, { messageId: "x", status: "Retrieved", username: "mmsc", password: "wrong" });
    expect(answer.status).toBe(401);
  });

  test("an image used by many messages is fetched once", async () => {
    const before = mmsc.received.length;
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const r = await post(app.url, "/mms", sendBody({ to: `00120255501${50 + i}`, callback_url: sink.url, media: { url: `http://127.0.0.1:${media.port}/campaign.jpg` } }));
      ids.push(r.json.id);
    }
    await waitFor("5 submits", () => mmsc.received.length >= before + 5);
    for (const s of mmsc.received.slice(before)) expect(Buffer.from(s.media[0]!.bytes).equals(Buffer.from(image))).toBe(true);
    expect(mediaFetches.get("/campaign.jpg")).toBe(1);
  });
});

describe("SMS over SMPP", () => {
  test("POST /sms → submit_sm → receipt → one signed webhook", async () => {
    const r = await post(app.url, "/sms", sendBody({ to: "0012025550124", text: "Hello €uro [x]", callback_url: sink.url, subject: undefined, fallback_text: undefined, custom_data: "cd-sms" }));
    expect(r.status).toBe(200);
    const events = await waitFor("webhook", () => sink.byMessage(r.json.id).length > 0 && sink.byMessage(r.json.id));
    await untilIdle(sqlite(app.store).db, [r.json.id]);
    expect(sink.byMessage(r.json.id)).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: "delivered", channel: "sms", fallback: false, custom_data: "cd-sms" });
    const submit = smsc.submits.find((s) => s.destAddr === "12025550124")!;
    expect(submit.dataCoding).toBe(0);
  });

  test("a long UCS2 text goes as several parts and is delivered once every part is", async () => {
    const text = "Привет 👋 ".repeat(20);
    const r = await post(app.url, "/sms", sendBody({ to: "0012025550125", text, callback_url: sink.url, subject: undefined, fallback_text: undefined }));
    await waitFor("webhook", () => sink.byMessage(r.json.id).length > 0);
    const parts = smsc.submits.filter((s) => s.destAddr === "12025550125");
    expect(parts.length).toBeGreaterThan(1);
    expect(Buffer.from(Buffer.concat(parts.map((p) => p.body)).swap16()).toString("utf16le")).toBe(text);
    expect(sink.byMessage(r.json.id)[0]).toMatchObject({ status: "delivered", channel: "sms" });
  });
});

test("MMS the MMSC refuses as 'handset cannot take MMS' → fallback SMS → receipt → one final webhook, channel sms", async () => {
  const r = await post(app.url, "/mms", sendBody({ to: "0012025550177", fallback_text: "Your code is 1234", callback_url: sink.url }));
  expect(r.status).toBe(200);
  const events = await waitFor("webhook", () => sink.byMessage(r.json.id).length > 0 && sink.byMessage(r.json.id));
  await untilIdle(sqlite(app.store).db, [r.json.id]);
  expect(sink.byMessage(r.json.id)).toHaveLength(1);
  expect(events[0]).toMatchObject({ status: "delivered", channel: "sms", fallback: true });
  const sms = smsc.submits.find((s) => s.destAddr === "12025550177")!;
  expect(sms.body.toString("latin1")).toBe("Your code is 1234");
});

describe("MO to the account's inbound_url", () => {
  test("an MO MMS larger than the Channel API's body limit still fits the MM7 inbound limit", async () => {
    const big = new Uint8Array(400 * 1024).fill(7);
    const answer = await mmsc.sendDeliverReq(`${app.url}/mm7`, { from: "+12025550997", to: "18885551234", text: "big one", media: [{ contentType: "image/jpeg", filename: "big.jpg", bytes: big }], username: "mmsc", password: "in-secret" });
    expect(answer.status).toBe(200);
    const e = (await waitFor("inbound MMS", () => inboundSink.events.find((x) => (x as any).text === "big one"))) as any;
    expect(Buffer.from(e.media[0].base64, "base64").length).toBe(big.length);
  });

  test("MO SMS", async () => {
    await smsc.sendMo({ from: "12025550999", to: "18885551234", dataCoding: 0, shortMessage: Buffer.from("STOP") });
    const e = await waitFor("inbound event", () => inboundSink.events.find((x) => (x as any).text === "STOP"));
    expect(e).toMatchObject({ type: "inbound", channel: "sms", from: "12025550999" });
  });

  test("a concatenated MO pushed out of the bounded reassembly buffer arrives partial and is counted in /metrics", async () => {
    const first = (ref: number, fill: string) => Buffer.concat([Buffer.from([5, 0, 3, ref, 2, 1]), Buffer.from(fill.repeat(140))]);
    await smsc.sendMo({ from: "12025550901", to: "18885551234", dataCoding: 0, esmClass: 0x40, shortMessage: first(1, "P") });
    await smsc.sendMo({ from: "12025550902", to: "18885551234", dataCoding: 0, esmClass: 0x40, shortMessage: first(2, "Q") });
    const e = await waitFor("partial MO", () => inboundSink.events.find((x) => (x as any).from === "12025550901"));
    expect((e as any).text).toBe("P".repeat(140));
    const m = await waitFor("counted", async () => ((await scrape(app.url)).get("gateway_mo_incomplete_total", { carrier: "sms", reason: "full", result: "delivered" }) === 1 ? true : undefined));
    expect(m).toBe(true);
  });

  test("MO MMS (DeliverReq)", async () => {
    const answer = await mmsc.sendDeliverReq(`${app.url}/mm7`, {
      from: "+12025550998",
      to: "18885551234",
      subject: "pic",
      text: "look",
      media: [{ contentType: "image/jpeg", filename: "a.jpg", bytes: image.slice(0, 1000) }],
      username: "mmsc",
      password: "in-secret",
    });
    expect(answer.status).toBe(200);
    const e = (await waitFor("inbound MMS", () => inboundSink.events.find((x) => (x as any).channel === "mms" && (x as any).text === "look"))) as any;
    expect(e.text).toBe("look");
    expect(Buffer.from(e.media[0].base64, "base64").equals(Buffer.from(image.slice(0, 1000)))).toBe(true);
  });
});
