// The outbox on its own, on a real SQLite store and a real webhook sink on loopback, with the clock
// standing still (a retried event is not due again within a test): what each answer of the callback URL
// does to the events, how a batch is signed and made, and what its log lines keep out.
import { afterEach, describe, expect, test } from "bun:test";
import { decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { createEgress, EgressRefused } from "../../src/egress/fetch.ts";
import { redactUrl, retryable } from "../../src/pipeline/outbox.ts";
import { waitFor } from "../support/app.ts";
import { gate, HOUR, realPost, rig, runRigCleanup, type Rig } from "../support/outbox-rig.ts";

afterEach(runRigCleanup);

/** Starts the outbox and waits until every one of `ids` has left `pending` (or has been tried once). */
async function sendAll(r: Rig, ids: string[]): Promise<void> {
  r.outbox.start();
  await waitFor("every event to be tried", () => ids.every((id) => r.row(id).state !== "pending" || r.row(id).attempts > 0));
}

describe("a batch", () => {
  test("one POST per callback URL with its events in order, signed HS256 with the clock's time, marked delivered on 2xx", async () => {
    const r = rig();
    const a = [await r.event(`${r.sink.url}/a`, 1), await r.event(`${r.sink.url}/a`, 2), await r.event(`${r.sink.url}/a`, 3)];
    const b = await r.event(`${r.sink.url}/b`, 4);
    r.clock.t += 2500;
    await sendAll(r, [...a, b]);
    expect([...a, b].map((id) => r.row(id).state)).toEqual(["delivered", "delivered", "delivered", "delivered"]);
    expect(r.posted.map((p) => new URL(p.url).pathname).sort()).toEqual(["/callback/a", "/callback/b"]);
    const toA = r.posted.find((p) => p.url.endsWith("/a"))!;
    expect((JSON.parse(toA.body) as { event_id: string }[]).map((e) => e.event_id)).toEqual(a);
    expect(toA.headers["content-type"]).toBe("application/json");
    expect(decodeProtectedHeader(toA.headers.authorization!)).toEqual({ alg: "HS256", typ: "JWT" });
    expect(decodeJwt(toA.headers.authorization!).iat).toBe(Math.floor(r.clock.t / 1000));
    expect(r.sink.badTokens).toBe(0);
    expect(r.sink.events.map((e) => e.event_id).sort()).toEqual([...a, b].sort());
    // The counters move after the rows are written: stop waits for the batches to end.
    await r.outbox.stop(30_000);
    expect(await r.metric("webhookDeliveries", "delivered")).toBe(2);
    expect(await r.metric("webhookEvents", "delivered")).toBe(4);
    expect(await r.metric("receiptToWebhook")).toBe(4);
    // Each event was 2.5 s old when its batch was delivered.
    const sum = (await r.metrics.receiptToWebhook.get()).values.find((v) => v.metricName?.endsWith("_sum"));
    expect(sum?.value).toBe(4 * 2.5);
    expect(await r.metric("deadLetters")).toBe(0);
  });

  test("with bearer_prefix the token goes as `Bearer <jwt>`", async () => {
    const r = rig({ settings: { bearer_prefix: true } });
    const id = await r.event(r.sink.url, 1);
    await sendAll(r, [id]);
    expect(r.row(id).state).toBe("delivered");
    expect(r.posted[0]!.headers.authorization).toStartWith("Bearer ");
    expect(r.sink.badTokens).toBe(0);
  });

  test("a secret reloaded within the same second signs the next batch (no token of the old key reused)", async () => {
    const r = rig();
    const first = await r.event(`${r.sink.url}/a`, 1);
    await sendAll(r, [first]);
    r.outbox.setSecrets(new Map([["acme", "rotated-secret-for-acme"]]));
    const second = await r.event(`${r.sink.url}/a`, 2);
    r.outbox.wake(0);
    await waitFor("the second event to be tried", () => r.row(second).state !== "pending" || r.row(second).attempts > 0);
    expect(r.posted).toHaveLength(2);
    await jwtVerify(r.posted[1]!.headers.authorization!, new TextEncoder().encode("rotated-secret-for-acme"));
  });

  test("a batch in a later second gets a token of that second (no token of an earlier second reused)", async () => {
    const r = rig();
    const first = await r.event(`${r.sink.url}/a`, 1);
    await sendAll(r, [first]);
    // The clock moves before the event exists: whichever round sends it, it is in the later second.
    r.clock.t += 1000;
    const second = await r.event(`${r.sink.url}/a`, 2);
    r.outbox.wake(0);
    await waitFor("the second event to be tried", () => r.row(second).state !== "pending" || r.row(second).attempts > 0);
    expect(r.posted.map((p) => decodeJwt(p.headers.authorization!).iat)).toEqual([Math.floor(r.clock.t / 1000) - 1, Math.floor(r.clock.t / 1000)]);
    expect(r.row(second).state).toBe("delivered");
  });

  test("no more than batch_max_events in one POST; every event still goes", async () => {
    const r = rig({ settings: { batch_max_events: 2 } });
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push(await r.event(r.sink.url, n));
    await sendAll(r, ids);
    expect(r.posted.map((p) => (JSON.parse(p.body) as unknown[]).length)).toEqual([2, 2, 1]);
    expect(r.sink.events.map((e) => e.event_id)).toEqual(ids);
  });

  test("an event of an account without a callback secret is dead-lettered unsent", async () => {
    const r = rig();
    const id = await r.event(r.sink.url, 1, "stranger");
    await sendAll(r, [id]);
    expect(r.row(id)).toMatchObject({ state: "dead", last_error: "no callback secret for account stranger" });
    expect(r.posted).toHaveLength(0);
  });
});

describe("what the callback URL's answer does", () => {
  for (const status of [401, 408, 429, 500, 503]) {
    test(`HTTP ${status}: retried after the backoff`, async () => {
      const r = rig();
      r.sink.answer = status;
      const id = await r.event(r.sink.url, 1);
      await sendAll(r, [id]);
      // attempt 1: ceiling 1000 ms, half jitter → 750 ms
      expect(r.row(id)).toEqual({ state: "pending", attempts: 1, due_at: r.clock.t + 750, last_error: `HTTP ${status}` });
      expect(await r.metric("webhookDeliveries", "retry")).toBe(1);
      expect(await r.metric("webhookDeliveries", "delivered")).toBe(0);
      expect(await r.metric("webhookDeliveries", "dead")).toBe(0);
      expect(await r.metric("deadLetters")).toBe(0);
    });
  }

  for (const status of [300, 301, 400, 403, 404, 410]) {
    test(`HTTP ${status}: dead-lettered`, async () => {
      const r = rig();
      r.sink.answer = status;
      const id = await r.event(r.sink.url, 1);
      await sendAll(r, [id]);
      expect(r.row(id)).toMatchObject({ state: "dead", last_error: `HTTP ${status} from the callback URL` });
      expect(await r.metric("webhookDeliveries", "dead")).toBe(1);
      expect(await r.metric("webhookEvents", "dead")).toBe(1);
      expect(await r.metric("deadLetters")).toBe(1);
    });
  }

  test("the backoff grows with the event's attempts", async () => {
    const r = rig();
    r.sink.answer = 503;
    const id = await r.event(r.sink.url, 1);
    await sendAll(r, [id]);
    r.clock.t += 750;
    r.outbox.wake(0);
    await waitFor("the second try", () => r.row(id).attempts === 2);
    // attempt 2: ceiling 2000 ms → 1500 ms
    expect(r.row(id).due_at).toBe(r.clock.t + 1500);
  });

  test("a network error is retried; a refusal by the egress policy is dead-lettered", async () => {
    // The gateway's own egress guard, allowing 127.0.0.1 only: port 9 there refuses the connection, and 127.0.0.2
    // is refused by the policy before any connection is tried.
    const egress = createEgress({ allow: ["127.0.0.1/32"] });
    const r = rig({
      post: async (url, headers, body, timeoutMs) => {
        const res = await egress.fetch(url, { method: "POST", headers, body, timeoutMs, maxBytes: 1 << 20, maxRedirects: 0 });
        return { status: res.status };
      },
      isRefusal: (e) => e instanceof EgressRefused,
    });
    const net = await r.event("http://127.0.0.1:9/net", 1);
    const priv = await r.event("http://127.0.0.2:9/private", 2);
    await sendAll(r, [net, priv]);
    expect(r.row(net)).toMatchObject({ state: "pending", attempts: 1 });
    expect(r.row(net).last_error).toStartWith("network: ");
    expect(r.row(priv).state).toBe("dead");
    expect(r.row(priv).last_error).toStartWith("refused by the egress policy: ");
  });

  test("an event failing at its max age is dead-lettered; a younger one of the same batch is retried", async () => {
    const r = rig({ maxAgeMs: HOUR });
    r.sink.answer = 503;
    const old = await r.event(r.sink.url, 1);
    r.clock.t += 1;
    const young = await r.event(r.sink.url, 2);
    r.clock.t += HOUR - 1; // `old` is exactly one hour old, `young` one millisecond younger
    await sendAll(r, [old, young]);
    expect(r.row(old)).toMatchObject({ state: "dead", last_error: "gave up after 1 h; last: HTTP 503" });
    expect(r.row(young)).toMatchObject({ state: "pending", attempts: 1, due_at: r.clock.t + 750 });
    await r.outbox.stop(30_000);
    expect(await r.metric("webhookDeliveries", "dead")).toBe(1);
    expect(await r.metric("webhookDeliveries", "retry")).toBe(1);
    expect(await r.metric("deadLetters")).toBe(1);
  });

  test("a batch failing with every event at its max age is dead-lettered whole, with no retry", async () => {
    const r = rig({ maxAgeMs: HOUR });
    r.sink.answer = 503;
    const ids = [await r.event(r.sink.url, 1), await r.event(r.sink.url, 2)];
    r.clock.t += HOUR;
    await sendAll(r, ids);
    await r.outbox.stop(30_000);
    for (const id of ids) expect(r.row(id)).toMatchObject({ state: "dead", last_error: "gave up after 1 h; last: HTTP 503" });
    expect(await r.metric("webhookDeliveries", "retry")).toBe(0);
    expect(await r.metric("webhookDeliveries", "dead")).toBe(1);
    expect(await r.metric("webhookEvents", "dead")).toBe(2);
    expect(await r.metric("deadLetters")).toBe(2);
  });
});

describe("how much is in flight", () => {
  test("no more POSTs at once than the concurrency, and one per callback URL; every event still goes", async () => {
    let inFlight = 0;
    let most = 0;
    const r = rig({
      settings: { concurrency: 2, batch_max_events: 2 },
      post: async (url, headers, body, timeoutMs) => {
        most = Math.max(most, ++inFlight);
        try {
          return { status: (await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(timeoutMs) })).status };
        } finally {
          inFlight--;
        }
      },
    });
    r.sink.delayMs = 300;
    const ids: string[] = [];
    for (let n = 0; n < 6; n++) ids.push(await r.event(`${r.sink.url}/${n % 3}`, n));
    r.outbox.start();
    await waitFor("every event to be delivered", () => ids.every((id) => r.row(id).state === "delivered"), 30_000);
    expect(most).toBe(2);
    for (const n of [0, 1, 2]) expect(r.sink.maxInFlight.get(`/callback/${n}`)).toBe(1);
  });
});

describe("stopping", () => {
  /** Stops the outbox with `deadlineMs` while the sink holds its answer to the one POST for `answerMs`. */
  async function stopDuringPost(answerMs: number, deadlineMs: number) {
    const r = rig();
    r.sink.delayMs = answerMs;
    const id = await r.event(r.sink.url, 1);
    r.outbox.start();
    await waitFor("the POST to reach the sink", () => r.sink.events.length === 1);
    await r.outbox.stop(deadlineMs);
    return r.row(id);
  }

  test("stop waits for a POST in flight: its answer is recorded", async () => {
    expect((await stopDuringPost(300, 30_000)).state).toBe("delivered");
  });

  test("stop gives up waiting at its deadline: the event stays pending, to be sent again", async () => {
    const held = gate();
    const r = rig({ post: async (...a) => (await held.wait(), realPost(...a)) });
    const id = await r.event(r.sink.url, 1);
    r.outbox.start();
    await waitFor("the POST to be held", () => held.reached === 1);
    await r.outbox.stop(10);
    expect(r.row(id)).toMatchObject({ state: "pending", attempts: 0 });
    held.open();
  });
});

describe("log lines", () => {
  test("a failing callback URL is logged without its query (tokens), with the events' message and request ids", async () => {
    const r = rig();
    r.sink.answer = 503;
    const id = await r.event(`${r.sink.url}?token=s3cret`, 1);
    await sendAll(r, [id]);
    r.sink.answer = 404;
    r.clock.t += 750;
    r.outbox.wake(0);
    await waitFor("the event to be dead-lettered", () => r.row(id).state === "dead");
    const lines = r.logs.filter((l) => l.url !== undefined);
    expect(lines.map((l) => l.msg)).toEqual(["webhook not delivered; will retry", "webhook events dead-lettered"]);
    for (const l of lines) {
      expect(JSON.stringify(l)).not.toContain("s3cret");
      expect(l.url).toBe(`${r.sink.url}?…`);
    }
    expect(lines[1]!.events).toEqual([id]);
    // An inbound event has no message or request id; its carrier id is the MO's.
    for (const l of lines) expect([l.messageIds, l.requestIds, l.carrierIds]).toEqual([[null], [null], ["mo-1"]]);
  });

  test("a dead-lettered event of a sent message names its message and request id", async () => {
    const r = rig();
    r.sink.answer = 404;
    // Accepted already past its validity: the first claim fails it, and its one event is the outbox's.
    await r.store.accept({
      accountId: "acme",
      requestId: "req-7",
      channel: "sms",
      payload: { from: "1", to: "12025550123", subject: "", text: "hi", fallback_text: "", media: [], custom_data: null, callback_url: r.sink.url, metadata: null },
      bodyHash: "h",
      expiresAt: r.clock.t,
    });
    expect(await r.store.claimDue("sms", 10)).toHaveLength(0);
    const ev = r.store.db.query("SELECT event_id, message_id FROM events").get() as { event_id: string; message_id: string };
    await sendAll(r, [ev.event_id]);
    const line = r.logs.find((l) => l.msg === "webhook events dead-lettered")!;
    expect([line.messageIds, line.requestIds, line.carrierIds]).toEqual([[ev.message_id], ["req-7"], [null]]);
  });

  test("redactUrl keeps scheme, host and path", () => {
    expect(redactUrl("https://user:pw@hooks.example:8443/cb/x?sig=abc#f")).toBe("https://hooks.example:8443/cb/x?…");
    expect(redactUrl("https://hooks.example/cb")).toBe("https://hooks.example/cb");
    expect(redactUrl("not a url")).toBe("<invalid url>");
  });

  test("retryable statuses: 401 (a token refused while a key rotates), 408, 429 and every 5xx", () => {
    const codes = [200, 204, 301, 400, 401, 403, 404, 408, 410, 422, 429, 499, 500, 502, 503, 599];
    expect(codes.filter(retryable)).toEqual([401, 408, 429, 500, 502, 503, 599]);
  });
});
