// /metrics: each metric moves when its event happens, read over HTTP as Prometheus would.
import { afterAll, describe, expect, test } from "bun:test";
import { ACME_SECRET, MM7_INBOUND, post, sendBody, startTestApp, waitFor } from "../support/app.ts";
import { scrape } from "../support/metrics.ts";
import { startLoggedApp } from "../support/ops.ts";
import { startSink } from "../support/sink.ts";
import { startMmscStub, type StubReply } from "../peers/mm7-stub.ts";

const sink = startSink(ACME_SECRET);
afterAll(() => sink.stop());

describe("traffic through the sandbox carriers", () => {
  test("requests, accepted, duplicates, submissions, retries, fallbacks, finals, receipts, webhooks and the histograms", async () => {
    const app = await startTestApp();
    try {
      const before = await scrape(app.url);
      const delivered = sendBody({ to: "0012025550123", callback_url: sink.url });
      const ids: string[] = [];
      for (const [path, body] of [
        ["/mms", delivered],
        ["/sms", sendBody({ to: "0012025550101", callback_url: sink.url, subject: undefined, fallback_text: undefined })], // retried once
        ["/mms", sendBody({ to: "0012025550102", callback_url: sink.url })], // refused for good
        ["/mms", sendBody({ to: "0012025550103", callback_url: sink.url })], // fallback SMS
      ] as const) {
        const r = await post(app.url, path, body);
        expect(r.status).toBe(200);
        ids.push(r.json.id);
      }
      expect((await post(app.url, "/mms", delivered)).status).toBe(200); // duplicate
      expect((await post(app.url, "/mms", sendBody(), { "Chan-Api-Key": "nope" })).status).toBe(401);
      for (const id of ids) await waitFor(`webhook of ${id}`, () => sink.byMessage(id).length > 0);
      await waitFor("webhook acknowledged", async () => (await scrape(app.url)).get("gateway_webhook_events_total", { result: "delivered" }) >= 4);

      const after = await scrape(app.url);
      const moved = (name: string, labels: Record<string, string> = {}) => after.get(name, labels) - before.get(name, labels);
      expect(moved("gateway_http_requests_total", { endpoint: "/mms", status: "200" })).toBe(4);
      expect(moved("gateway_http_requests_total", { endpoint: "/mms", status: "401" })).toBe(1);
      expect(moved("gateway_http_requests_total", { endpoint: "/sms", status: "200" })).toBe(1);
      expect(moved("gateway_messages_accepted_total", { channel: "mms" })).toBe(3);
      expect(moved("gateway_messages_accepted_total", { channel: "sms" })).toBe(1);
      expect(moved("gateway_duplicates_total", { body_differs: "false" })).toBe(1);
      expect(moved("gateway_submissions_total", { carrier: "mms", outcome: "ok" })).toBe(2);
      expect(moved("gateway_submissions_total", { carrier: "mms", outcome: "permanent" })).toBe(1);
      expect(moved("gateway_submissions_total", { carrier: "sms", outcome: "temporary" })).toBe(1);
      expect(moved("gateway_submissions_total", { carrier: "sms", outcome: "ok" })).toBe(2);
      expect(moved("gateway_retries_total", { carrier: "sms" })).toBe(1);
      // The sandbox's "no MMS on this handset" comes as a receipt: counted although no submit answer said it.
      expect(moved("gateway_fallbacks_total")).toBe(1);
      expect(moved("gateway_final_events_total", { status: "delivered" })).toBe(3);
      expect(moved("gateway_final_events_total", { status: "failed" })).toBe(1);
      expect(moved("gateway_receipts_total", { carrier: "mms", outcome: "delivered", result: "applied" })).toBe(1);
      expect(moved("gateway_receipts_total", { carrier: "mms", outcome: "failed", result: "applied" })).toBe(1);
      expect(moved("gateway_receipts_total", { carrier: "sms", outcome: "delivered", result: "applied" })).toBe(2);
      expect(moved("gateway_webhook_events_total", { result: "delivered" })).toBe(4);
      expect(after.get("gateway_webhook_deliveries_total", { result: "delivered" })).toBeGreaterThanOrEqual(1);
      expect(moved("gateway_accept_seconds_count", { channel: "mms" })).toBe(3);
      expect(moved("gateway_accept_seconds_count", { channel: "sms" })).toBe(1);
      expect(moved("gateway_submit_seconds_count", { carrier: "mms" })).toBe(3);
      expect(moved("gateway_submit_seconds_count", { carrier: "sms" })).toBe(3);
      expect(moved("gateway_receipt_to_webhook_seconds_count")).toBe(4);
      expect(after.get("gateway_carrier_link_up", { carrier: "mms", link: "mms" })).toBe(1);
    } finally {
      await app.stop();
    }
  });

  test("webhook retries, dead letters and the outbox gauge", async () => {
    const local = startSink(ACME_SECRET);
    const app = await startTestApp();
    try {
      local.answer = 503;
      const first = await post(app.url, "/sms", sendBody({ callback_url: local.url, subject: undefined, fallback_text: undefined }));
      await waitFor("a retry", async () => (await scrape(app.url)).get("gateway_webhook_deliveries_total", { result: "retry" }) >= 1);
      local.answer = 200;
      await waitFor("delivered after the retry", () => local.byMessage(first.json.id).length > 0);

      local.answer = 400;
      const before = await scrape(app.url);
      expect(before.get("gateway_dead_letters_total")).toBe(0);
      await post(app.url, "/sms", sendBody({ callback_url: local.url, subject: undefined, fallback_text: undefined }));
      await waitFor("dead letter", async () => (await scrape(app.url)).get("gateway_dead_letters_total") === 1);
      const after = await scrape(app.url);
      expect(after.get("gateway_webhook_deliveries_total", { result: "dead" })).toBe(1);
      expect(after.get("gateway_webhook_events_total", { result: "dead" })).toBe(1);
      expect(after.get("gateway_outbox_events", { state: "dead" })).toBe(1);
    } finally {
      await app.stop();
      local.stop();
    }
  });
});

test("unknown field names: the first 50 distinct ones are labels, every later one is counted as other", async () => {
  const app = await startTestApp();
  try {
    for (const batch of [0, 1]) {
      const junk = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`junk_${batch}_${i}`, 1]));
      expect((await post(app.url, "/sms", { ...sendBody({ subject: undefined, fallback_text: undefined }), ...junk })).status).toBe(200);
    }
    const m = await scrape(app.url);
    const series = m.text.split("\n").filter((l) => l.startsWith("gateway_unknown_fields_total{"));
    expect(series).toHaveLength(51);
    expect(m.get("gateway_unknown_fields_total", { field: "junk_0_0" })).toBe(1);
    expect(m.get("gateway_unknown_fields_total", { field: "other" })).toBe(6000 - 50);
    expect(m.sum("gateway_unknown_fields_total")).toBe(6000);
  } finally {
    await app.stop();
  }
});

test("queue depth and oldest age per state and channel follow the queue (fake clock)", async () => {
  let t = 1_760_000_000_000;
  const app = await startLoggedApp({ log: { level: "silent" }, delivery: { paused: true } }, undefined, { now: () => t });
  try {
    const empty = await scrape(app.url);
    expect(empty.sum("gateway_queue_depth")).toBe(0);
    for (let i = 0; i < 2; i++) expect((await post(app.url, "/mms", sendBody({ callback_url: sink.url }))).status).toBe(200);
    t += 4000;
    expect((await post(app.url, "/sms", sendBody({ callback_url: sink.url, subject: undefined, fallback_text: undefined }))).status).toBe(200);
    t += 3000;
    const s = await scrape(app.url);
    expect(s.get("gateway_queue_depth", { state: "accepted", channel: "mms" })).toBe(2);
    expect(s.get("gateway_queue_depth", { state: "accepted", channel: "sms" })).toBe(1);
    expect(s.get("gateway_queue_oldest_seconds", { state: "accepted", channel: "mms" })).toBe(7);
    expect(s.get("gateway_queue_oldest_seconds", { state: "accepted", channel: "sms" })).toBe(3);
  } finally {
    await app.stop();
  }
});

test("carrier link state: 1 while the MMSC answers, 0 once it reports a configuration problem", async () => {
  let reply: StubReply = { kind: "ok", messageId: "m-1" };
  const mmsc = await startMmscStub({ scenario: () => reply });
  const app = await startTestApp({ carriers: { mms: { kind: "mm7", url: mmsc.url, vaspid: "V", vasid: "S" } }, inbound: { mm7: MM7_INBOUND } });
  try {
    const link = async () => (await scrape(app.url)).get("gateway_carrier_link_up", { carrier: "mms", link: "mms" });
    expect(await link()).toBe(0); // idle: nothing sent yet
    await post(app.url, "/mms", sendBody({ callback_url: sink.url }));
    await waitFor("link up", async () => (await link()) === 1);
    reply = { kind: "status", code: 2001, text: "Operation restricted" };
    await post(app.url, "/mms", sendBody({ callback_url: sink.url }));
    await waitFor("link alarm", async () => (await link()) === 0);
    expect((await scrape(app.url)).get("gateway_submissions_total", { carrier: "mms", outcome: "permanent" })).toBe(1);
  } finally {
    await app.stop();
    await mmsc.stop();
  }
});
