// The JSON logs at debug level under real traffic over MM7 and SMPP: no configured secret ever appears
// in any line, and the lines about a message name it (messageId, requestId, carrier, carrier id).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { post, sendBody, waitFor } from "../support/app.ts";
import { adminFetch, ADMIN_TOKEN, startLoggedApp } from "../support/ops.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { startMmscStub, type MmscStub } from "../peers/mm7-stub.ts";
import { startSmsc, type Smsc } from "../peers/smpp-sim.ts";

const secrets = {
  chanKey: "chan-KEY-7f3a9c41",
  chanToken: "chan-TOKEN-b18e22d0",
  callbackSecret: "callback-SECRET-5d6e7f80",
  mm7Password: "mm7-PASSWORD-1a2b3c4d",
  smppPassword: "smppPw91",
  inboundPassword: "inbound-PASSWORD-99aa88bb",
  adminToken: ADMIN_TOKEN,
};
const headers = { "Chan-Api-Key": secrets.chanKey, "Chan-Token": secrets.chanToken };

let app: Awaited<ReturnType<typeof startLoggedApp>>;
let mmsc: MmscStub;
let smsc: Smsc;
let sink: Sink;
let counter = 0;

beforeAll(async () => {
  sink = startSink(secrets.callbackSecret);
  mmsc = await startMmscStub({
    username: "vasp",
    password: secrets.mm7Password,
    scenario: (req) => ((req.to[0]?.value ?? "").endsWith("77") ? { kind: "status", code: 2002, text: "Address Error" } : { kind: "ok", messageId: `mmsc-${++counter}` }),
  });
  smsc = await startSmsc({ sendReceipts: true, receiptDelayMs: 20, idBase: "dec", systemId: "gw", password: secrets.smppPassword });
  app = await startLoggedApp({
    log: { level: "debug" },
    server: { listen: "127.0.0.1:0", log_request_bodies: true },
    accounts: [{ id: "acme", headers, callback_secret: secrets.callbackSecret }],
    carriers: {
      mms: { kind: "mm7", url: mmsc.url, username: "vasp", password: secrets.mm7Password, vaspid: "VASP1", vasid: "VAS1" },
      sms: { kind: "smpp", host: "127.0.0.1", port: smsc.port, system_id: "gw", password: secrets.smppPassword, reconnect_min_ms: 100, reconnect_max_ms: 500 },
    },
    inbound: { mm7: { path: "/mm7", username: "mmsc", password: secrets.inboundPassword } },
  });
  await waitFor("SMPP bound", () => smsc.openSessions > 0);
});

afterAll(async () => {
  await app.stop();
  await mmsc.stop();
  await smsc.stop();
  sink.stop();
});

test("debug logs of MM7, SMPP, fallback, receipts, webhooks and admin traffic contain no configured secret", async () => {
  const mms = await post(app.url, "/mms", sendBody({ to: "0012025550123", callback_url: sink.url }), headers);
  const fallback = await post(app.url, "/mms", sendBody({ to: "0012025550177", callback_url: sink.url }), headers);
  sink.answer = 500; // one failed webhook round: the retry path logs too
  const sms = await post(app.url, "/sms", sendBody({ to: "0012025550124", callback_url: sink.url, subject: undefined, fallback_text: undefined }), headers);
  expect([mms.status, fallback.status, sms.status]).toEqual([200, 200, 200]);
  await waitFor("a refused webhook", () => sink.posts > 0);
  sink.answer = 200;
  // A duplicate, a bad key and a wrong admin token log as well.
  expect((await post(app.url, "/sms", sendBody({ request_id: "dup-1", callback_url: sink.url, subject: undefined, fallback_text: undefined }), headers)).status).toBe(200);
  expect((await post(app.url, "/sms", sendBody({ request_id: "dup-1", callback_url: sink.url, subject: undefined, fallback_text: undefined }), headers)).status).toBe(200);
  expect((await post(app.url, "/sms", sendBody(), { "Chan-Api-Key": "wrong" })).status).toBe(401);
  expect((await adminFetch(app.url, `/admin/messages/${mms.json.id}`)).status).toBe(200);
  expect((await adminFetch(app.url, "/status", { headers: { authorization: "Bearer not-the-token" } })).status).toBe(401);

  const submitted = await waitFor("MM7 message id", async () => {
    const d = (await app.store.describe(mms.json.id)) as { carrierIds: { carrier_id: string }[] } | null;
    return d?.carrierIds[0]?.carrier_id;
  });
  const report = await mmsc.sendDeliveryReport(`${app.url}/mm7`, { messageId: submitted, status: "Retrieved", username: "mmsc", password: secrets.inboundPassword });
  expect(report.status).toBe(200);
  for (const id of [mms.json.id, fallback.json.id, sms.json.id]) await waitFor(`webhook for ${id}`, () => sink.byMessage(id).length > 0);

  const lines = app.captured.lines;
  expect(lines.length).toBeGreaterThan(20);
  // The capture switch really logged the headers (redacted), so the check below is not vacuous.
  expect(lines.some((l) => l.includes("raw request") && l.includes("chan-token"))).toBe(true);
  const basicForms = [`vasp:${secrets.mm7Password}`, `mmsc:${secrets.inboundPassword}`, `admin:${secrets.adminToken}`].map((s) => Buffer.from(s).toString("base64"));
  for (const line of lines) {
    for (const [name, value] of Object.entries(secrets)) expect({ name, leaked: line.includes(value) }).toEqual({ name, leaked: false });
    for (const b of basicForms) expect(line.includes(b)).toBe(false);
    // A webhook JWT in a log would be a usable credential until its iat window closes.
    expect(line).not.toMatch(/eyJhbGciOi/);
  }
});

test("every line about a message names it: messageId and requestId, and the carrier and its id once known", async () => {
  const body = sendBody({ to: "0012025550125", callback_url: sink.url, subject: undefined, fallback_text: undefined });
  const r = await post(app.url, "/sms", body, headers);
  await waitFor("webhook", () => sink.byMessage(r.json.id).length > 0);
  const about = app.captured.parsed().filter((l) => l.messageId === r.json.id);
  const byMsg = (m: string) => about.find((l) => l.msg === m);
  expect(byMsg("accepted")).toMatchObject({ messageId: r.json.id, requestId: body.request_id, accountId: "acme" });
  const submittedLine = byMsg("submitted")!;
  expect(submittedLine).toMatchObject({ requestId: body.request_id, carrier: "sms" });
  expect((submittedLine.carrierIds as string[]).length).toBe(1);
  expect(byMsg("receipt")).toMatchObject({ requestId: body.request_id, carrier: "sms", carrierId: (submittedLine.carrierIds as string[])[0], outcome: "delivered" });

  // The rule over every line, the adapters' included: a line naming a message names its request.
  const naming = app.captured.parsed().filter((l) => typeof l.messageId === "string");
  expect(naming.some((l) => l.msg === "mm7 submit not accepted")).toBe(true); // the 2002 above, from the adapter
  expect(naming.length).toBeGreaterThan(5);
  for (const l of naming) expect({ msg: l.msg, hasRequestId: "requestId" in l }).toEqual({ msg: l.msg, hasRequestId: true });
  // And no line says a key twice (a child logger's carrier plus the adapter's own).
  const repeated = app.captured.lines.filter((line) => ["carrier", "messageId", "requestId"].some((key) => line.split(`"${key}":`).length > 2));
  expect(repeated).toEqual([]);
  // Lines about a failed webhook name the messages and requests in the batch.
  const retry = app.captured.parsed().find((l) => l.msg === "webhook not delivered; will retry")!;
  expect(retry).toBeDefined();
  expect((retry.messageIds as string[]).length).toBeGreaterThan(0);
  expect((retry.requestIds as string[]).length).toBe((retry.messageIds as string[]).length);
});
