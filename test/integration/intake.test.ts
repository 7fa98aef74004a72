// The Channel API over real HTTP with a real SQLite file: every row of the status table.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import type { App } from "../../src/app.ts";
import { ACME_KEY, post, sendBody, startTestApp, sqlite } from "../support/app.ts";

let app: App & { dir: string };
const count = (sql: string, ...args: string[]) => (sqlite(app.store).db.query(sql).get(...args) as { n: number }).n;

beforeAll(async () => {
  app = await startTestApp({
    accounts: [
      { id: "acme", headers: { "Chan-Api-Key": ACME_KEY }, callback_secret: "s" },
      { id: "off", headers: { "Chan-Api-Key": "off-key" }, callback_secret: "s", enabled: false },
      { id: "strict", headers: { "Chan-Api-Key": "strict-key", "Chan-Project": "p1" }, callback_secret: "s", allowed_senders: ["ACME"], rate_limit: 2 },
    ],
    server: { max_body_bytes: 4096 },
    carriers: { mms: { sandbox_report_delay_ms: 60000 }, sms: { sandbox_report_delay_ms: 60000 } },
  });
});
afterAll(() => app.stop());

describe("200", () => {
  test("a new message is stored and its id returned", async () => {
    const body = sendBody();
    const r = await post(app.url, "/mms", body);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ id: expect.stringMatching(/^msg_/), request_id: body.request_id, status: "accepted" });
    expect(count("SELECT COUNT(*) AS n FROM messages WHERE id = ?", r.json.id)).toBe(1);
  });

  test("a seen request_id replays the original answer, even with another body, and stores nothing new", async () => {
    const body = sendBody();
    const first = await post(app.url, "/mms", body);
    const again = await post(app.url, "/mms", { ...body, text: "changed" });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(count("SELECT COUNT(*) AS n FROM messages WHERE request_id = ?", body.request_id as string)).toBe(1);
  });

  test("50 copies at the same instant: one message, 50 identical answers", async () => {
    const body = sendBody();
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(app.url, "/mms", body)));
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([200]));
    expect(new Set(answers.map((a) => a.json.id)).size).toBe(1);
    expect(count("SELECT COUNT(*) AS n FROM messages WHERE request_id = ?", body.request_id as string)).toBe(1);
  });

  test("no request_id → a generated id each time, no dedup", async () => {
    const body = sendBody({ request_id: undefined });
    const a = await post(app.url, "/mms", body);
    const b = await post(app.url, "/mms", body);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.json.id).not.toBe(b.json.id);
    expect(a.json.request_id).toBeNull();
  });

  test("header names match case-insensitively", async () => {
    expect((await post(app.url, "/sms", sendBody({ subject: undefined, fallback_text: undefined, metadata: undefined }), { "chan-api-key": ACME_KEY })).status).toBe(200);
  });

  test("GET /verify with good headers", async () => {
    const r = await fetch(`${app.url}/verify`, { headers: { "CHAN-API-KEY": ACME_KEY } });
    expect(r.status).toBe(200);
  });
});

describe("permanent refusals", () => {
  test("400 for a body that is not JSON", async () => {
    const r = await post(app.url, "/mms", "{nope");
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: "invalid_json", field: "body" });
  });

  test("400 names the field, and is replayed for the same request_id", async () => {
    const body = sendBody({ to: "12345" });
    const r = await post(app.url, "/mms", body);
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: "invalid_field", field: "to" });
    const fixed = await post(app.url, "/mms", { ...body, to: "0012025550123" });
    expect(fixed.status).toBe(400);
    expect(fixed.json).toEqual(r.json);
  });

  test("401 for unknown headers, with a message BR can show", async () => {
    const r = await post(app.url, "/mms", sendBody(), { "Chan-Api-Key": "wrong" });
    expect(r.status).toBe(401);
    expect(r.json.error.message).toContain("Chan-");
    const v = await fetch(`${app.url}/verify`, { headers: { "Chan-Api-Key": "wrong" } });
    expect(v.status).toBe(401);
    expect(((await v.json()) as any).error.message.length).toBeGreaterThan(10);
  });

  test("401 when only one of an account's two headers matches", async () => {
    expect((await post(app.url, "/mms", sendBody(), { "Chan-Api-Key": "strict-key", "Chan-Project": "p2" })).status).toBe(401);
  });

  test("403 for a disabled account", async () => {
    expect((await post(app.url, "/mms", sendBody(), { "Chan-Api-Key": "off-key" })).status).toBe(403);
  });

  test("403 for a sender the account may not use (stored and replayed)", async () => {
    const h = { "Chan-Api-Key": "strict-key", "Chan-Project": "p1" };
    const body = sendBody({ from: "OTHER" });
    const r = await post(app.url, "/mms", body, h);
    expect(r.status).toBe(403);
    expect(r.json.error.field).toBe("from");
    expect(count("SELECT COUNT(*) AS n FROM dedup WHERE request_id = ? AND status = 403", body.request_id as string)).toBe(1);
  });

  test("413 one byte over the body limit; the limit itself passes", async () => {
    const base = JSON.stringify(sendBody({ custom_data: "" }));
    const pad = (n: number) => base.replace('"custom_data":""', `"custom_data":"${"x".repeat(n)}"`);
    const at = pad(4096 - base.length);
    expect(Buffer.byteLength(at)).toBe(4096);
    expect((await post(app.url, "/mms", at)).status).toBe(200);
    const over = pad(4097 - base.length);
    expect(Buffer.byteLength(over)).toBe(4097);
    const r = await post(app.url, "/mms", over);
    expect(r.status).toBe(413);
    expect(r.json.error.code).toBe("too_large");
  });

  test("413 with a JSON error for a chunked body (no Content-Length) over the limit, and far over it", async () => {
    for (const size of [4097, 10 * 1024 * 1024]) {
      const big = new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(`{"text":"${"x".repeat(size)}"}`));
          c.close();
        },
      });
      const r = await fetch(`${app.url}/mms`, { method: "POST", headers: { "Chan-Api-Key": ACME_KEY, "content-type": "application/json" }, body: big });
      expect(r.status).toBe(413);
      expect(((await r.json()) as any).error.code).toBe("too_large");
    }
  });

  test("415 for a body that is not application/json", async () => {
    const r = await fetch(`${app.url}/mms`, { method: "POST", headers: { "Chan-Api-Key": ACME_KEY, "content-type": "text/plain" }, body: JSON.stringify(sendBody()) });
    expect(r.status).toBe(415);
  });
});

describe("temporary refusals carry Retry-After", () => {
  test("429 over the account's rate limit", async () => {
    const h = { "Chan-Api-Key": "strict-key", "Chan-Project": "p1" };
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await post(app.url, "/mms", sendBody({ from: "ACME" }), h));
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]!.headers.get("retry-after")).toBe("2");
  });

  test("503 while storage is locked; recovers by itself when the lock goes", async () => {
    const other = new Database(`${app.dir}/gateway.db`);
    other.run("PRAGMA busy_timeout = 0");
    other.run("BEGIN EXCLUSIVE");
    try {
      const body = sendBody();
      const r = await post(app.url, "/mms", body);
      expect(r.status).toBe(503);
      expect(r.headers.get("retry-after")).toBe("2");
      expect(r.json.error.code).toBe("storage_unavailable");
      other.run("ROLLBACK");
      const again = await post(app.url, "/mms", body);
      expect(again.status).toBe(200);
      expect(count("SELECT COUNT(*) AS n FROM messages WHERE request_id = ?", body.request_id as string)).toBe(1);
    } finally {
      if (other.inTransaction) other.run("ROLLBACK");
      other.close();
    }
  }, 30000);
});

test("values nested 60,000 deep (in one spelling or two) are a 400 naming the field, not a stack overflow and a 503", async () => {
  const own = await startTestApp();
  try {
    const deep = `${"[".repeat(60_000)}${"]".repeat(60_000)}`;
    // Each with its own request_id: a refusal is stored and replayed for its request_id.
    const valid = () => JSON.stringify(sendBody({ custom_data: undefined, metadata: undefined }));
    for (const [extra, field] of [
      [`"custom_data": ${deep}, "customData": ${deep}`, "custom_data"],
      [`"metadata": {"a": ${deep}}`, "metadata"],
    ] as const) {
      const r = await post(own.url, "/mms", `{${extra}, ${valid().slice(1)}`);
      expect({ status: r.status, error: r.json.error }).toEqual({ status: 400, error: { code: "invalid_field", field, message: "nested deeper than 32 levels" } });
    }
    // An unknown field is ignored whatever its shape; 32 levels in a known one are fine.
    expect((await post(own.url, "/mms", `{"unknown_field": ${deep}, ${valid().slice(1)}`)).status).toBe(200);
    const ok = await post(own.url, "/mms", sendBody({ metadata: { a: JSON.parse(`${"[".repeat(31)}${"]".repeat(31)}`) } }));
    expect(ok.status).toBe(200);
  } finally {
    await own.stop();
  }
});

test("429 at the queue's high-water mark", async () => {
  // Paused delivery keeps them waiting for the carrier (messages already submitted do not count).
  const small = await startTestApp({ limits: { queue_high_water: 3 }, delivery: { paused: true } });
  try {
    const statuses = [];
    const first = sendBody();
    for (let i = 0; i < 5; i++) statuses.push((await post(small.url, "/mms", i === 0 ? first : sendBody())).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    // A retry of an answered request is still replayed while new work is refused.
    const again = await post(small.url, "/mms", first);
    expect(again.status).toBe(200);
    expect(again.json.request_id).toBe(first.request_id);
  } finally {
    await small.stop();
  }
});

test("503 with Retry-After while shutdown drains in-flight submits", async () => {
  // A media server that answers slowly keeps one submit in flight while the gateway drains.
  const slow = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: async () => (await Bun.sleep(1500), new Response(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]), { headers: { "content-type": "image/jpeg" } })) });
  const s = await startTestApp();
  try {
    expect((await post(s.url, "/mms", sendBody({ media: { url: `http://127.0.0.1:${slow.port}/a.jpg` } }))).status).toBe(200);
    await Bun.sleep(200);
    const stopping = s.stop();
    const r = await post(s.url, "/mms", sendBody());
    expect(r.status).toBe(503);
    expect(r.json.error.code).toBe("shutting_down");
    expect(r.headers.get("retry-after")).toBe("2");
    await stopping;
  } finally {
    slow.stop(true);
  }
});
