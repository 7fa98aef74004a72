// Graceful shutdown of the compiled binary: SIGTERM under load exits 0, every 200 is stored exactly
// once, and the next start has nothing in flight to recover; a second signal exits at once.
import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { ACME_KEY, ACME_SECRET, MM7_INBOUND, sendBody, tempDir, testConfigDoc, waitFor } from "../support/app.ts";
import { configFor, freePort, startBinary } from "../support/binary.ts";
import { startSink } from "../support/sink.ts";
import { startMmscStub } from "../peers/mm7-stub.ts";

const sink = startSink(ACME_SECRET);
afterAll(() => sink.stop());

type Outcome = { requestId: string; status: number | "error"; id?: string };

/** `workers` loops each sending up to `perWorker` requests; stops a loop at its first connection error. */
async function load(url: string, workers: number, perWorker: number, onAnswer: (n: number) => void): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < perWorker; i++) {
        const channel = (w + i) % 2 === 0 ? "mms" : "sms";
        const body = sendBody({ callback_url: sink.url, ...(channel === "sms" ? { subject: undefined, fallback_text: undefined } : {}) });
        const requestId = body.request_id as string;
        try {
          const r = await fetch(`${url}/${channel}`, { method: "POST", headers: { "content-type": "application/json", "Chan-Api-Key": ACME_KEY }, body: JSON.stringify(body) });
          const json = (await r.json().catch(() => ({}))) as { id?: string };
          outcomes.push({ requestId, status: r.status, id: json.id });
        } catch {
          outcomes.push({ requestId, status: "error" });
          return;
        }
        onAnswer(outcomes.length);
      }
    }),
  );
  return outcomes;
}

test(
  "SIGTERM under load: exit 0, every 200 stored exactly once, nothing left in flight, the restart finishes the work",
  async () => {
    const dir = tempDir();
    const config = configFor(dir, testConfigDoc(dir, { log: { level: "info" } }));
    const port = freePort();
    let gw = await startBinary(config, port);
    let signalled = false;
    const outcomes = await load(gw.url, 16, 60, (n) => {
      if (n >= 150 && !signalled) {
        signalled = true;
        gw.proc.kill("SIGTERM");
      }
    });
    expect(signalled).toBe(true);
    expect(await gw.proc.exited).toBe(0);
    // The pipe may hand over its last bytes just after the exit is seen.
    await waitFor("last log line read", () => gw.output().includes("gateway stopped"));

    const ok = outcomes.filter((o) => o.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(150);
    // Whatever was not a 200 was a clean refusal (503 while shutting down) or a closed connection.
    for (const o of outcomes) expect([200, 503, "error"]).toContain(o.status);

    const db = new Database(join(dir, "gateway.db"), { readonly: true });
    const rows = db.query("SELECT id, request_id FROM messages").all() as { id: string; request_id: string }[];
    const byRequest = new Map<string, string[]>();
    for (const r of rows) byRequest.set(r.request_id, [...(byRequest.get(r.request_id) ?? []), r.id]);
    for (const o of ok) expect({ request: o.requestId, ids: byRequest.get(o.requestId) }).toEqual({ request: o.requestId, ids: [o.id!] });
    // What recoverInFlight would find at the next start: nothing was cut mid-submit.
    const inFlight = (db.query("SELECT COUNT(*) AS n FROM messages WHERE state = 'submitting'").get() as { n: number }).n;
    db.close();
    expect(inFlight).toBe(0);

    gw = await startBinary(config, port);
    try {
      await waitFor(
        "every accepted message final",
        () => {
          const d = new Database(join(dir, "gateway.db"), { readonly: true });
          const open = (d.query("SELECT COUNT(*) AS n FROM messages WHERE state NOT IN ('delivered', 'failed', 'sent')").get() as { n: number }).n;
          d.close();
          return open === 0;
        },
        30000,
      );
      for (const o of ok) await waitFor(`webhook for ${o.id}`, () => sink.byMessage(o.id!).length === 1, 30000);
      expect(gw.output()).not.toContain("messages were in flight");
    } finally {
      gw.proc.kill("SIGTERM");
      expect(await gw.proc.exited).toBe(0);
    }
  },
  60000,
);

test(
  "a second signal exits at once (130) while a submit hangs; the next start reports that message as in flight",
  async () => {
    const mmsc = await startMmscStub({ scenario: () => ({ kind: "hang" }) });
    const dir = tempDir();
    // A deadline far beyond this test's timeout: only the second signal can end the process in time.
    const doc = testConfigDoc(dir, { log: { level: "info" }, server: { listen: "127.0.0.1:0", shutdown_deadline_ms: 120000 }, carriers: { mms: { kind: "mm7", url: mmsc.url, vaspid: "V", vasid: "S", timeout_ms: 120000 } }, inbound: { mm7: MM7_INBOUND } });
    const config = configFor(dir, doc);
    const port = freePort();
    let gw = await startBinary(config, port);
    try {
      const r = await fetch(`${gw.url}/mms`, { method: "POST", headers: { "content-type": "application/json", "Chan-Api-Key": ACME_KEY }, body: JSON.stringify(sendBody({ callback_url: sink.url })) });
      expect(r.status).toBe(200);
      await waitFor("submit in flight", () => mmsc.received.length === 1);
      gw.proc.kill("SIGTERM");
      await waitFor("graceful shutdown begun", () => gw.output().includes("shutting down gracefully"));
      expect(gw.proc.exitCode).toBeNull();
      gw.proc.kill("SIGINT");
      expect(await gw.proc.exited).toBe(130);
      await waitFor("last log line read", () => gw.output().includes("second signal: exiting now"));

      gw = await startBinary(config, port);
      await waitFor("recovery logged", () => /"count":1,.*messages were in flight when the gateway stopped/.test(gw.output()));
    } finally {
      gw.proc.kill("SIGTERM");
      await gw.proc.exited;
      await mmsc.stop();
    }
  },
  20000,
);
