// The admin API and the status page over HTTP: who may use them, and what each call does to the queue.
import { afterAll, describe, expect, test } from "bun:test";
import { ACME_SECRET, MM7_INBOUND, post, sendBody, startTestApp, waitFor } from "../support/app.ts";
import { adminFetch, ADMIN_TOKEN, basic, bearer, startLoggedApp } from "../support/ops.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";
import { startSink } from "../support/sink.ts";
import { startMmscStub, type StubReply } from "../peers/mm7-stub.ts";

const sink = startSink(ACME_SECRET);
afterAll(() => sink.stop());

describe("access", () => {
  test("no admin.token: /status and every /admin path answer 404, whatever the credentials", async () => {
    const app = await startTestApp();
    try {
      for (const path of ["/status", "/admin/dead-letters", "/admin/messages/x"]) {
        expect((await adminFetch(app.url, path, { headers: bearer("") })).status).toBe(404);
        expect((await adminFetch(app.url, path)).status).toBe(404);
      }
      expect((await adminFetch(app.url, "/admin/purge", { method: "POST", body: { older_than_hours: 1 } })).status).toBe(404);
    } finally {
      await app.stop();
    }
  });

  test("with a token: Bearer or Basic admin:<token> pass; anything else is 401 with a Basic challenge", async () => {
    const app = await startLoggedApp({});
    try {
      for (const path of ["/status", "/admin/dead-letters"]) {
        const none = await adminFetch(app.url, path, { headers: {} });
        expect(none.status).toBe(401);
        expect(none.headers.get("www-authenticate")).toStartWith("Basic realm=");
        expect((await adminFetch(app.url, path, { headers: bearer("wrong") })).status).toBe(401);
        expect((await adminFetch(app.url, path, { headers: basic(ADMIN_TOKEN, "root") })).status).toBe(401);
        expect((await adminFetch(app.url, path, { headers: basic("wrong") })).status).toBe(401);
        expect((await adminFetch(app.url, path, { headers: { "Chan-Api-Key": "acme-test-key" } })).status).toBe(401);
        expect((await adminFetch(app.url, path, { headers: bearer() })).status).toBe(200);
        expect((await adminFetch(app.url, path, { headers: basic() })).status).toBe(200);
      }
    } finally {
      await app.stop();
    }
  });

  test("a POST from another site's page, or not JSON, is refused before it acts (CSRF with saved Basic credentials)", async () => {
    const app = await startLoggedApp({});
    try {
      const r = await post(app.url, "/sms", sendBody({ to: "0012025550102", subject: undefined, fallback_text: undefined }));
      await waitFor("failed", async () => ((await app.store.describe(r.json.id)) as { state: string }).state === "failed");
      const retry = (headers: Record<string, string>, body?: string) =>
        fetch(`${app.url}/admin/messages/retry-failed`, { method: "POST", headers: { ...basic(), ...headers }, body }).then(async (x) => ({ status: x.status, text: await x.text() }));
      // What <form enctype="text/plain" method="post"> on any page sends with the browser's saved credentials.
      const form = await retry({ "content-type": "text/plain", origin: "http://evil.example", "sec-fetch-site": "cross-site" }, '{"filter":{}}');
      expect(form.status).toBe(403);
      expect(form.text).toContain("another site");
      expect((await retry({ "content-type": "text/plain" }, '{"filter":{}}')).status).toBe(415);
      expect((await retry({})).status).toBe(415); // a bodiless POST would retry everything
      expect((await retry({ "content-type": "application/json", origin: "http://evil.example" }, "{}")).status).toBe(403);
      expect((await retry({ "content-type": "application/json", origin: "null" }, "{}")).status).toBe(403);
      expect((await retry({ "content-type": "application/json", "sec-fetch-site": "same-site" }, "{}")).status).toBe(403);
      expect(((await app.store.describe(r.json.id)) as { state: string }).state).toBe("failed");
      // The operator's own page (same origin) and scripts (no Origin) pass.
      const own = await retry({ "content-type": "application/json", origin: app.url, "sec-fetch-site": "same-origin" }, "{}");
      expect(own).toEqual({ status: 200, text: '{"retried":1}\n' });
    } finally {
      await app.stop();
    }
  });
});

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
}, 30_000);
/** The store part of a test app's config: SQLite in the app's directory, or a fresh PostgreSQL database. */
const engines = [
  { name: "sqlite", skip: false, store: async () => ({}) },
  {
    name: "postgres",
    skip: !pgAvailable,
    async store() {
      const db = await createTestDatabase();
      databases.push(db);
      return { store: { kind: "postgres", url: db.url }, node: { id: "admin-http" } };
    },
  },
];

for (const engine of engines) {
  describe.skipIf(engine.skip)(`operations on ${engine.name}`, () => {
    test("messages by id and by request_id; unknown is 404", async () => {
      const app = await startLoggedApp({ ...(await engine.store()) });
      try {
        const body = sendBody({ callback_url: sink.url });
        const r = await post(app.url, "/mms", body);
        await waitFor("delivered", () => sink.byMessage(r.json.id).length > 0);
        // The sink has the POST before the gateway has its answer and marks the event delivered.
        const byId = await waitFor("the webhook's answer recorded", async () => {
          const got = await adminFetch(app.url, `/admin/messages/${r.json.id}`);
          return got.json?.events?.[0]?.state !== "pending" && got;
        });
        expect(byId.status).toBe(200);
        expect(byId.json).toMatchObject({ id: r.json.id, requestId: body.request_id, state: "delivered" });
        expect(byId.json.events[0]).toMatchObject({ kind: "delivered", state: "delivered" });
        expect((await adminFetch(app.url, `/admin/messages/${encodeURIComponent(body.request_id as string)}`)).json.id).toBe(r.json.id);
        expect((await adminFetch(app.url, "/admin/messages/msg_nope")).status).toBe(404);
      } finally {
        await app.stop();
      }
    });

    test("dead letters are listed, and requeued ones are delivered without waiting", async () => {
      const local = startSink(ACME_SECRET);
      const app = await startLoggedApp({ ...(await engine.store()) });
      try {
        local.answer = 410;
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) ids.push((await post(app.url, "/sms", sendBody({ callback_url: local.url, subject: undefined, fallback_text: undefined }))).json.id);
        const dead = await waitFor("3 dead letters", async () => {
          const r = await adminFetch(app.url, "/admin/dead-letters");
          return r.json.dead_letters.length === 3 && r.json.dead_letters;
        });
        expect(dead.map((d: { message_id: string }) => d.message_id).sort()).toEqual([...ids].sort());
        expect(dead[0].last_error).toBe("HTTP 410 from the callback URL");
        expect((await adminFetch(app.url, "/admin/dead-letters?limit=1")).json.dead_letters).toHaveLength(1);
        expect((await adminFetch(app.url, "/admin/dead-letters?limit=zero")).status).toBe(400);

        local.answer = 200;
        const one = await adminFetch(app.url, "/admin/dead-letters/requeue", { method: "POST", body: { seqs: [dead[0].seq] } });
        expect(one.json).toEqual({ requeued: 1 });
        await waitFor("first requeued delivered", () => local.byMessage(dead[0].message_id).length === 1);
        expect((await adminFetch(app.url, "/admin/dead-letters/requeue", { method: "POST", body: { seqs: "all" } })).json).toEqual({ requeued: 2 });
        for (const id of ids) await waitFor(`delivered ${id}`, () => local.byMessage(id).length === 1);
        expect((await adminFetch(app.url, "/admin/dead-letters")).json.dead_letters).toEqual([]);
        expect((await adminFetch(app.url, "/admin/dead-letters/requeue", { method: "POST", body: { seqs: ["x"] } })).status).toBe(400);
        expect((await adminFetch(app.url, "/admin/dead-letters/requeue", { method: "POST", body: {} })).status).toBe(400);
      } finally {
        await app.stop();
        local.stop();
      }
    });

    test("retry-failed sends the matching failed messages again, once the carrier takes them", async () => {
      let reply: StubReply = { kind: "status", code: 3001, text: "Not Possible" };
      let n = 0;
      const mmsc = await startMmscStub({ scenario: () => (reply.kind === "ok" ? { kind: "ok", messageId: `m-${++n}` } : reply) });
      const app = await startLoggedApp({ ...(await engine.store()), carriers: { mms: { kind: "mm7", url: mmsc.url, vaspid: "V", vasid: "S" } }, inbound: { mm7: MM7_INBOUND } });
      try {
        const r = await post(app.url, "/mms", sendBody({ callback_url: sink.url }));
        await waitFor("failed event", () => sink.byMessage(r.json.id).length === 1);
        const failed = (await app.store.describe(r.json.id)) as { state: string; lastError: string };
        expect(failed.state).toBe("failed");
        const code = JSON.parse(failed.lastError).code as string;

        expect((await adminFetch(app.url, "/admin/messages/retry-failed", { method: "POST", body: { filter: { error: "other:1" } } })).json).toEqual({ retried: 0 });
        expect((await adminFetch(app.url, "/admin/messages/retry-failed", { method: "POST", body: { filter: { account: "someone-else" } } })).json).toEqual({ retried: 0 });
        expect((await adminFetch(app.url, "/admin/messages/retry-failed", { method: "POST", body: { filter: { since: "yesterday" } } })).status).toBe(400);
        reply = { kind: "ok" };
        const retried = await adminFetch(app.url, "/admin/messages/retry-failed", { method: "POST", body: { filter: { error: code, account: "acme", since: new Date(0).toISOString() } } });
        expect(retried.json).toEqual({ retried: 1 });
        await waitFor("submitted again", async () => ((await app.store.describe(r.json.id)) as { state: string }).state === "submitted");
        expect(mmsc.received).toHaveLength(2);
        const history = ((await app.store.describe(r.json.id)) as { history: { detail?: string }[] }).history.map((h) => h.detail);
        expect(history).toContain("operator retry");
      } finally {
        await app.stop();
        await mmsc.stop();
      }
    });

    test("purge removes finished messages older than asked, but never a dedup key inside the dedup window", async () => {
      // Starts at the real time: the sink checks the JWT's iat against its own clock.
      let t = Date.now();
      const app = await startLoggedApp({ ...(await engine.store()) }, undefined, { now: () => t });
      try {
        const body = sendBody({ callback_url: sink.url });
        const r = await post(app.url, "/mms", body);
        await waitFor("delivered", () => sink.byMessage(r.json.id).length === 1);
        await waitFor("event acknowledged", async () => ((await app.store.describe(r.json.id)) as { events: { state: string }[] }).events[0]?.state === "delivered");
        expect((await adminFetch(app.url, "/admin/purge", { method: "POST", body: { older_than_hours: 2 } })).json).toEqual({ dedup: 0, messages: 0, events: 0 });
        t += 3 * 3_600_000;
        expect((await adminFetch(app.url, "/admin/purge", { method: "POST", body: { older_than_hours: 2 } })).json).toEqual({ dedup: 0, messages: 1, events: 1 });
        expect((await adminFetch(app.url, `/admin/messages/${r.json.id}`)).status).toBe(404);
        // The request_id is still remembered: the same request is answered, not sent again.
        const again = await post(app.url, "/mms", body);
        expect(again.json.id).toBe(r.json.id);
        expect((await adminFetch(app.url, "/admin/purge", { method: "POST", body: { older_than_hours: 0 } })).status).toBe(400);
        expect((await adminFetch(app.url, "/admin/purge", { method: "POST", body: "not an object" })).status).toBe(400);
      } finally {
        await app.stop();
      }
    });
  });
}

test("the status page shows links, queue, throughput, errors and dead letters, every outside value escaped", async () => {
  const hostile = `<img src=x onerror="alert(1)">&`;
  let reply: StubReply = { kind: "ok", messageId: "m-1" };
  const mmsc = await startMmscStub({ scenario: () => reply });
  const local = startSink(ACME_SECRET);
  const app = await startLoggedApp({ carriers: { mms: { kind: "mm7", url: mmsc.url, vaspid: "V", vasid: "S" } }, inbound: { mm7: MM7_INBOUND } });
  try {
    local.answer = 400;
    await post(app.url, "/sms", sendBody({ callback_url: local.url, subject: undefined, fallback_text: undefined }));
    await waitFor("dead letter", async () => (await app.store.listDeadEvents()).length === 1);
    reply = { kind: "status", code: 2001, text: hostile };
    await post(app.url, "/mms", sendBody({ callback_url: sink.url }));
    await waitFor("alarm", async () => (await app.store.listDeadEvents()).length === 1 && mmsc.received.length === 1 && app.activity.recentErrors().length >= 2);

    const page = await adminFetch(app.url, "/status?refresh=7");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.text).toContain('<meta http-equiv="refresh" content="7">');
    expect(page.text).not.toContain("<img");
    expect(page.text).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;");
    expect(page.text).toContain('data-k="carrier:mms">alarm<');
    expect(page.text).toContain('data-k="minute:accepted">2<');
    expect(page.text).toContain('data-k="events:dead">1<');
    expect(page.text).toContain("webhook events dead-lettered");
    expect(page.text).toContain("mm7 carrier alarm: configuration problem");
    expect(page.text).toContain((await app.store.listDeadEvents())[0]!.event_id as string);
  } finally {
    await app.stop();
    await mmsc.stop();
    local.stop();
  }
});
