// /healthz and /readyz: ready means storage takes writes and no carrier link is down or in alarm.
import { expect, test } from "bun:test";
import { ACME_SECRET, MM7_INBOUND, post, sendBody, startTestApp, waitFor, sqlite } from "../support/app.ts";
import { startSink } from "../support/sink.ts";
import { heldPort } from "../support/binary.ts";
import { startMmscStub, type StubReply } from "../peers/mm7-stub.ts";

const readyz = async (base: string) => {
  const r = await fetch(`${base}/readyz`);
  return { status: r.status, body: (await r.json()) as { ready: boolean; problems: string[] } };
};

test("healthz answers while the process runs; readyz is 200 on a healthy gateway", async () => {
  const app = await startTestApp();
  try {
    const h = await fetch(`${app.url}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.text()).toBe("ok\n");
    expect(await readyz(app.url)).toEqual({ status: 200, body: expect.objectContaining({ ready: true, problems: [] }) });
  } finally {
    await app.stop();
  }
});

test("readyz is 503 while storage refuses writes, and 200 again once it takes them", async () => {
  const app = await startTestApp();
  try {
    // A full disk, for real: SQLite may not grow the file past the pages it has now.
    const pages = (sqlite(app.store).db.query("PRAGMA page_count").get() as { page_count: number }).page_count;
    sqlite(app.store).db.run(`PRAGMA max_page_count = ${pages}`);
    let status = 0;
    for (let i = 0; i < 200 && status !== 503; i++) status = (await post(app.url, "/mms", sendBody({ text: "x".repeat(4000) }))).status;
    expect(status).toBe(503);
    const down = await readyz(app.url);
    expect(down.status).toBe(503);
    expect(down.body.problems).toContain("storage is not writable");
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200); // alive, only not ready

    sqlite(app.store).db.run("PRAGMA max_page_count = 1073741823");
    expect((await post(app.url, "/mms", sendBody())).status).toBe(200);
    expect((await readyz(app.url)).status).toBe(200);
  } finally {
    await app.stop();
  }
});

test("readyz is 503 when the MMSC cannot be reached (carrier down)", async () => {
  const mmsc = heldPort();
  const app = await startTestApp({ carriers: { mms: { kind: "mm7", url: `http://127.0.0.1:${mmsc.port}/mm7`, vaspid: "V", vasid: "S", timeout_ms: 2000 } }, inbound: { mm7: MM7_INBOUND } });
  mmsc.release();
  try {
    expect((await readyz(app.url)).status).toBe(200); // idle: nothing tried yet
    await post(app.url, "/mms", sendBody());
    const r = await waitFor("not ready", async () => {
      const x = await readyz(app.url);
      return x.status === 503 && x;
    });
    expect(r.body.problems.join()).toMatch(/^carrier mms: down \(MMSC unreachable/);
  } finally {
    await app.stop();
  }
});

test("readyz shows the MMSC's scheme, host, port and path only: no credentials, query or fragment", async () => {
  const mmsc = heldPort();
  const port = mmsc.port;
  const url = `http://vasp:url-PASSWORD@127.0.0.1:${port}/mm7/submit?apikey=QUERY-SECRET&x=1#frag-SECRET`;
  const app = await startTestApp({ carriers: { mms: { kind: "mm7", url, vaspid: "V", vasid: "S", timeout_ms: 2000 } }, inbound: { mm7: MM7_INBOUND } });
  mmsc.release();
  try {
    await post(app.url, "/mms", sendBody());
    const text = await waitFor("not ready", async () => {
      const r = await fetch(`${app.url}/readyz`);
      const t = await r.text();
      return r.status === 503 && t;
    });
    expect(text).toContain(`MMSC unreachable at http://127.0.0.1:${port}/mm7/submit:`);
    for (const secret of ["url-PASSWORD", "vasp", "QUERY-SECRET", "apikey", "frag-SECRET"]) expect(text).not.toContain(secret);
  } finally {
    await app.stop();
  }
});

test("readyz is 503 when the MMSC reports a configuration problem (carrier alarm)", async () => {
  let reply: StubReply = { kind: "ok", messageId: "m-1" };
  const mmsc = await startMmscStub({ scenario: () => reply });
  const app = await startTestApp({ carriers: { mms: { kind: "mm7", url: mmsc.url, vaspid: "V", vasid: "S" } }, inbound: { mm7: MM7_INBOUND } });
  try {
    await post(app.url, "/mms", sendBody());
    await waitFor("submitted", () => mmsc.received.length === 1);
    expect((await readyz(app.url)).status).toBe(200);
    reply = { kind: "status", code: 2001, text: "Operation restricted" };
    await post(app.url, "/mms", sendBody());
    const r = await waitFor("alarm", async () => {
      const x = await readyz(app.url);
      return x.status === 503 && x;
    });
    expect(r.body.problems.join()).toMatch(/^carrier mms: alarm/);
  } finally {
    await app.stop();
    await mmsc.stop();
  }
});

test("readyz is 503 once shutdown has begun", async () => {
  // A webhook POST held open by the sink keeps the shutdown (and the listener) going for a while.
  const sink = startSink(ACME_SECRET);
  sink.delayMs = 1500;
  const app = await startTestApp({ server: { listen: "127.0.0.1:0", shutdown_deadline_ms: 1000 } });
  try {
    await post(app.url, "/sms", sendBody({ callback_url: sink.url, subject: undefined, fallback_text: undefined }));
    await waitFor("webhook in flight", () => sink.posts === 1);
    const stopping = app.stop();
    const r = await readyz(app.url);
    expect(r.status).toBe(503);
    expect(r.body.problems).toContain("shutting down");
    await stopping;
  } finally {
    sink.stop();
  }
});
