// Accepted → sandbox carrier → receipt → signed webhook, over real HTTP with a JWT-verifying sink.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { App } from "../../src/app.ts";
import { ACME_SECRET, post, sendBody, startTestApp, waitFor, sqlite } from "../support/app.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { untilIdle } from "../support/idle.ts";

let app: App & { dir: string };
let sink: Sink;

beforeAll(async () => {
  sink = startSink(ACME_SECRET);
  app = await startTestApp();
});
afterAll(async () => {
  await app.stop();
  sink.stop();
});

async function journey(path: "/mms" | "/sms", to: string, extra: Record<string, unknown> = {}) {
  const body =
    path === "/mms"
      ? sendBody({ to, callback_url: sink.url, ...extra })
      : sendBody({ to, callback_url: sink.url, subject: undefined, fallback_text: undefined, ...extra });
  const r = await post(app.url, path, body);
  expect(r.status).toBe(200);
  await waitFor(`final event for ${to}`, () => {
    const e = sink.byMessage(r.json.id);
    return e.length > 0 && e;
  });
  await untilIdle(sqlite(app.store).db, [r.json.id]); // a second final event would have been posted by now
  return { id: r.json.id as string, body, events: sink.byMessage(r.json.id) };
}

describe("sandbox MMS", () => {
  test("anything else → delivered, with custom_data byte for byte", async () => {
    const { events, body, id } = await journey("/mms", "0012025550100", { custom_data: "a%20b&c=ü😀" });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ message_id: id, request_id: body.request_id, custom_data: "a%20b&c=ü😀", status: "delivered", channel: "mms", fallback: false, to: "0012025550100", from: "18885551234" });
    expect(events[0]!.event_id).toMatch(/^evt_/);
    expect(typeof events[0]!.carrier_message_id).toBe("string");
  });

  test("01 → first submit fails temporarily, the retry is delivered", async () => {
    const { events, id } = await journey("/mms", "0012025550101");
    expect(events.map((e) => e.status)).toEqual(["delivered"]);
    expect((await app.store.getMessage(id))!.attempts).toBe(2);
  });

  test("02 → failed", async () => {
    const { events } = await journey("/mms", "0012025550102");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: "failed", channel: "mms", error: { code: "sandbox:rejected" } });
  });

  test("03 → handset cannot take MMS → fallback SMS delivered", async () => {
    const { events } = await journey("/mms", "0012025550103");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: "delivered", channel: "sms", fallback: true });
  });

  test("03 with empty fallback_text → failed, no SMS", async () => {
    const { events } = await journey("/mms", "0012025550103", { fallback_text: "" });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: "failed", channel: "mms", fallback: false });
    expect(events[0]!.error!.message).toContain("no fallback text");
  });

  test("04 → accepted, report says expired → failed", async () => {
    const { events } = await journey("/mms", "0012025550104");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: "failed", error: { code: "sandbox:expired" } });
  });
});

describe("sandbox SMS", () => {
  for (const [to, status] of [
    ["0012025550200", "delivered"],
    ["0012025550201", "delivered"],
    ["0012025550202", "failed"],
    ["0012025550203", "delivered"],
    ["0012025550204", "failed"],
  ] as const) {
    test(`${to.slice(-2)} → ${status}`, async () => {
      const { events } = await journey("/sms", to);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ status, channel: "sms", fallback: false });
    });
  }
});

test("every POST carried a valid fresh JWT", () => {
  expect(sink.badTokens).toBe(0);
  expect(sink.posts).toBeGreaterThan(0);
});

describe("webhook faults", () => {
  test("sink down (503) for a while → every event arrives later, one per message", async () => {
    sink.answer = 503;
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await post(app.url, "/sms", sendBody({ to: `00120255503${String(i).padStart(2, "0")}`.replace(/0[1-4]$/, "10"), callback_url: sink.url, subject: undefined, fallback_text: undefined }));
      ids.push(r.json.id);
    }
    await waitFor("retries to start", () => (sqlite(app.store).db.query("SELECT COUNT(*) AS n FROM events WHERE state = 'pending' AND attempts > 0").get() as { n: number }).n >= 1);
    expect(ids.every((id) => sink.byMessage(id).length === 0)).toBe(true);
    sink.answer = 200;
    await waitFor("all delivered after recovery", () => ids.every((id) => sink.byMessage(id).length === 1));
  });

  test("sink answers 401 → retried (a key rotation must not dead-letter reports)", async () => {
    sink.answer = 401;
    const r = await post(app.url, "/sms", sendBody({ to: "0012025550311", callback_url: sink.url, subject: undefined, fallback_text: undefined }));
    await waitFor("a retry", () => (sqlite(app.store).db.query("SELECT attempts FROM events WHERE message_id = ?").get(r.json.id) as { attempts: number } | null)?.attempts ?? 0 >= 1);
    sink.answer = 200;
    await waitFor("delivered", () => sink.byMessage(r.json.id).length === 1);
  });

  test("sink answers 400 → dead letter, kept and listable, requeue delivers it", async () => {
    sink.answer = 400;
    const r = await post(app.url, "/sms", sendBody({ to: "0012025550312", callback_url: sink.url, subject: undefined, fallback_text: undefined }));
    const dead = await waitFor("dead letter", async () => (await app.store.listDeadEvents()).find((e) => e.message_id === r.json.id));
    expect(String(dead.last_error)).toContain("HTTP 400");
    sink.answer = 200;
    expect(await app.store.requeueDead([dead.seq as number])).toBe(1);
    await waitFor("delivered after requeue", () => sink.byMessage(r.json.id).length === 1);
  });
});

test("bearer_prefix sends 'Bearer <jwt>'", async () => {
  const bearerSink = startSink(ACME_SECRET, { bearer: true });
  const a = await startTestApp({ webhooks: { bearer_prefix: true } });
  try {
    const r = await post(a.url, "/mms", sendBody({ to: "0012025550100", callback_url: bearerSink.url }));
    await waitFor("event", () => bearerSink.byMessage(r.json.id).length === 1);
    expect(bearerSink.badTokens).toBe(0);
  } finally {
    await a.stop();
    bearerSink.stop();
  }
});

test("a loopback callback URL is never contacted when egress.allow is empty: refused at intake as a literal, dead-lettered when a name resolves there", async () => {
  const guarded = startSink(ACME_SECRET);
  const a = await startTestApp({ egress: { allow: [] } });
  try {
    const literal = await post(a.url, "/mms", sendBody({ to: "0012025550100", callback_url: guarded.url }));
    expect(literal.status).toBe(400);
    expect(literal.json.error).toMatchObject({ code: "invalid_field", field: "callback_url" });
    const media = await post(a.url, "/mms", sendBody({ to: "0012025550100", callback_url: "https://br.example/cb", media: [{ url: "https://cdn.example/a.jpg" }, { url: "http://[::1]:9/x.jpg" }] }));
    expect(media.status).toBe(400);
    expect(media.json.error.field).toBe("media[1].url");
    // A name is resolved only when the report is sent: `localhost` → loopback → refused then.
    const r = await post(a.url, "/mms", sendBody({ to: "0012025550100", callback_url: guarded.url.replace("127.0.0.1", "localhost") }));
    expect(r.status).toBe(200);
    const dead = await waitFor("dead letter", async () => (await a.store.listDeadEvents()).find((e) => e.message_id === r.json.id));
    expect(String(dead.last_error)).toContain("egress");
    expect(guarded.posts).toBe(0);
  } finally {
    await a.stop();
    guarded.stop();
  }
});

test("events queued behind a retrying one never crowd the outbox: everything arrives, in order per message", async () => {
  // A read window of 2 events (batch 2, one POST at a time) and two events per message ('sent' then the
  // final one): while the sink is down, every message has its later event waiting behind a retry.
  const s = startSink(ACME_SECRET);
  const a = await startTestApp({ delivery: { intermediate_events: true }, webhooks: { batch_max_events: 2, concurrency: 1 } });
  try {
    s.answer = 503;
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await post(a.url, "/sms", sendBody({ to: `00120255504${String(i).padStart(2, "0")}`.replace(/0[1-4]$/, "10"), callback_url: s.url, subject: undefined, fallback_text: undefined }));
      ids.push(r.json.id);
    }
    await waitFor("every message final with its events pending", () =>
      ids.every((id) => (sqlite(a.store).db.query("SELECT COUNT(*) AS n FROM events WHERE message_id = ? AND state = 'pending'").get(id) as { n: number }).n === 2),
    );
    await Bun.sleep(300);
    s.answer = 200;
    await waitFor("both events of every message", () => ids.every((id) => s.byMessage(id).length === 2), 30000);
    for (const id of ids) expect(s.byMessage(id).map((e) => e.status)).toEqual(["sent", "delivered"]);
  } finally {
    await a.stop();
    s.stop();
  }
});
