// SIGHUP in process, where the moment of the reload must fall inside a request or a submit: a request
// whose body is still arriving, and a submit waiting at a carrier that is replaced. Real HTTP on
// loopback, a real MMSC stub, real SQLite.
import { afterEach, describe, expect, test } from "bun:test";
import type { App } from "../../src/app.ts";
import { ACME_KEY, MM7_INBOUND, post, sendBody, startTestApp, testConfig, waitFor } from "../support/app.ts";
import { startMmscStub } from "../peers/mm7-stub.ts";
import { scrape } from "../support/metrics.ts";

let app: (App & { dir: string }) | null = null;
afterEach(async () => {
  await app?.stop();
  app = null;
});

const account = (allowed: string[]) => ({ id: "acme", headers: { "Chan-Api-Key": ACME_KEY }, callback_secret: "s", allowed_senders: allowed });

describe("SIGHUP and accounts", () => {
  test("a request whose body is still arriving is judged by the account set it was authenticated with; the next by the new one", async () => {
    app = await startTestApp({ accounts: [account(["111"])] });
    const body = new TextEncoder().encode(JSON.stringify(sendBody({ from: "111" })));
    let push!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({ start: (c) => void (push = c) });
    // Chunked (no Content-Length): the handler authenticates on the headers, then reads the body as it comes.
    const pending = fetch(`${app.url}/mms`, { method: "POST", headers: { "content-type": "application/json", "Chan-Api-Key": ACME_KEY }, body: stream, duplex: "half" } as RequestInit);
    push.enqueue(body.subarray(0, 10));
    await Bun.sleep(100);
    expect(await app.reloadRouting(testConfig(app.dir, { accounts: [account(["222"])] }))).toEqual(["accounts reloaded"]);
    push.enqueue(body.subarray(10));
    push.close();
    // Authenticated before the reload, with sender 111 allowed: never the new set's refusal.
    expect((await pending).status).toBe(200);
    const after = await post(app.url, "/mms", sendBody({ from: "111" }));
    expect(after.status).toBe(403);
    expect(after.json.error.code).toBe("sender_not_allowed");
  });
});

describe("SIGHUP and a replaced MM7 carrier", () => {
  test("a submit waiting at the old carrier goes to its replacement, once, with no retry; the one in flight finishes at the old", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const mmscA = await startMmscStub({ scenario: async () => (await held, { kind: "ok", messageId: "A-1" }) });
    const mmscB = await startMmscStub({ scenario: () => ({ kind: "ok", messageId: "B-1" }) });
    try {
      // One submit per second at A: the second message waits in A's gate when the reload comes.
      const mms = (url: string) => ({ kind: "mm7", url, concurrency: 2, rate: 1, rate_burst: 1 });
      app = await startTestApp({ carriers: { mms: mms(mmscA.url) }, inbound: { mm7: MM7_INBOUND } });
      const a = await post(app.url, "/mms", sendBody({ media: [] }));
      await waitFor("first at A", () => mmscA.received.length === 1);
      const b = await post(app.url, "/mms", sendBody({ media: [] }));
      await Bun.sleep(200);
      expect(mmscB.received).toHaveLength(0);
      const reloaded = app.reloadRouting(testConfig(app.dir, { carriers: { mms: mms(mmscB.url) }, inbound: { mm7: MM7_INBOUND } }));
      await waitFor("second at B", () => mmscB.received.length === 1);
      release();
      expect(await reloaded).toEqual(["carrier mms changed: replaced"]);
      const state = async (id: string) => (await app!.store.getMessage(id))?.state;
      await waitFor("both submitted", async () => (await state(a.json.id)) === "submitted" && (await state(b.json.id)) === "submitted");
      expect([mmscA.received.length, mmscB.received.length]).toEqual([1, 1]);
      expect((await app.store.getMessage(b.json.id))?.attempts).toBe(1);
      expect((await scrape(app.url)).get("gateway_retries_total", { carrier: "mms" })).toBe(0);
    } finally {
      release();
      await mmscA.stop();
      await mmscB.stop();
    }
  });
});
