// The dispatcher claims only when work may be due (#15): a submit the carrier took and a delivered receipt
// make nothing due, so they claim nothing. With the idle poll out of reach, only the wakes drive it: every
// way this process makes a message due must still get it sent.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import pino from "pino";
import { startApp, type App } from "../../src/app.ts";
import type { StoredMessage } from "../../src/domain/message.ts";
import { ACME_SECRET, post, sendBody, sqlite, tempDir, testConfig, waitFor } from "../support/app.ts";
import { scrape } from "../support/metrics.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";
import { startSink, type Sink } from "../support/sink.ts";

let app: App | undefined;
let sink: Sink | undefined;

afterEach(async () => {
  await app?.stop();
  sink?.stop();
  app = sink = undefined;
});

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
}, 30_000);

/** A gateway whose dispatcher never polls by itself; counts the claims that ask for SMS. */
async function gateway(overrides: Record<string, unknown> = {}, engine: "sqlite" | "postgres" = "sqlite") {
  sink = startSink(ACME_SECRET);
  if (engine === "postgres") {
    const db = await createTestDatabase();
    databases.push(db);
    overrides = { ...overrides, store: { kind: "postgres", url: db.url }, node: { id: "wakes" } };
  }
  app = await startApp(testConfig(tempDir(), overrides), { log: pino({ level: "silent" }), dispatcherPollMs: 3_600_000 });
  const claims = { sms: 0 };
  const claimDue = app.store.claimDue.bind(app.store);
  app.store.claimDue = (channel, limit, assign) => {
    if (channel === "sms") claims.sms++;
    return claimDue(channel, limit, assign);
  };
  return { app, sink, claims };
}

async function send(path: "/sms" | "/mms", to: string): Promise<string> {
  const body = path === "/sms" ? sendBody({ to, text: `to ${to}`, callback_url: sink!.url, subject: undefined, fallback_text: undefined, media: undefined }) : sendBody({ to, callback_url: sink!.url });
  const r = await post(app!.url, path, body);
  expect(r.status).toBe(200);
  return r.json.id as string;
}

const finalOf = (id: string) => waitFor(`final event of ${id}`, () => sink!.byMessage(id).find((e) => ["delivered", "failed", "sent"].includes(e.status)));

describe("claims only when work may be due", () => {
  test("SMS sent one at a time: one claim each (none after the carrier took it, none for its delivered receipt)", async () => {
    const { claims } = await gateway();
    await waitFor("start-up claims done", async () => (await app!.store.queueStats()).length === 0);
    const before = claims.sms;
    for (const to of ["0012025550170", "0012025550175", "0012025550176"]) expect((await finalOf(await send("/sms", to))).status).toBe("delivered");
    expect(claims.sms - before).toBe(3);
  });

  test("SQLite: a message sent alone is claimed in its accept's own commit (one fsync for both, not two)", async () => {
    await gateway();
    // A first message delivered: the start-up claims are over and the dispatcher is quiet (no pump running).
    expect((await finalOf(await send("/sms", "0012025550178"))).status).toBe("delivered");
    const writer = sqlite(app!.store).writer;
    // The commit count each resolved at: both settle on the same fsync when they share a commit.
    const at: { accepted?: number; claimed?: number } = {};
    const accept = app!.store.accept.bind(app!.store);
    app!.store.accept = (input) => accept(input).then((r) => ((at.accepted = writer.commits), r));
    const claimDue = app!.store.claimDue.bind(app!.store);
    app!.store.claimDue = (channel, limit, assign) => claimDue(channel, limit, assign).then((ms) => (ms.length > 0 && (at.claimed = writer.commits), ms));
    expect((await finalOf(await send("/sms", "0012025550177"))).status).toBe("delivered");
    expect(at.accepted).toBeNumber();
    expect(at.claimed).toBe(at.accepted!);
  });
});

// On PostgreSQL too: there the wakes also come back through LISTEN/NOTIFY.
for (const engine of ["sqlite", "postgres"] as const) {
    describe.skipIf(engine === "postgres" && !pgAvailable)(`with the idle poll out of reach, every message made due here is still sent (${engine})`, () => {
    test("a burst larger than the carrier's concurrency: each freed slot claims from the rest", async () => {
      await gateway({ carriers: { sms: { kind: "sandbox", sandbox_report_delay_ms: 5, concurrency: 2 } }, delivery: { claim_batch: 2 } }, engine);
      const ids = await Promise.all(Array.from({ length: 24 }, (_, i) => send("/sms", `00120255502${String(10 + i)}`)));
      for (const id of ids) expect((await finalOf(id)).status).toBe("delivered");
    });

    test("a temporary refusal is retried when its backoff ends (sandbox scenario 01)", async () => {
      await gateway({}, engine);
      const id = await send("/sms", "0012025550101");
      expect((await finalOf(id)).status).toBe("delivered");
      expect((await app!.store.getMessage(id))!.attempts).toBe(2);
    });

    test("a permanent refusal goes to the route's next carrier at once (sandbox scenario 02 on both)", async () => {
      await gateway({
        carriers: { sms_b: { kind: "sandbox", channel: "sms", sandbox_report_delay_ms: 5 } },
        routes: [{ channel: "sms", prefixes: ["1202"], carriers: ["sms", "sms_b"], retry_elsewhere: ["permanent"] }],
      }, engine);
      const id = await send("/sms", "0012025550102");
      expect((await finalOf(id)).status).toBe("failed");
      const m = await scrape(app!.url);
      expect(m.get("gateway_submissions_total", { carrier: "sms", outcome: "permanent" })).toBe(1);
      expect(m.get("gateway_submissions_total", { carrier: "sms_b", outcome: "permanent" })).toBe(1);
    });

    test("an MMS whose receipt says the handset takes no MMS falls back to SMS (sandbox scenario 03)", async () => {
      await gateway({}, engine);
      const id = await send("/mms", "0012025550103");
      const final = await finalOf(id);
      expect(final.status).toBe("delivered");
      const m = (await app!.store.getMessage(id)) as StoredMessage;
      expect(m.fallback).toBe(true);
      expect(m.channel).toBe("sms");
    });
  });
}
