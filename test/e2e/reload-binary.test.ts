// SIGHUP in the compiled binary for MM7 carriers and accounts: kill -HUP the process, real MMSC stubs and
// a real webhook sink on loopback. A replaced MM7 carrier finishes the submit it has in flight; the
// inbound endpoint and the Channel API follow the new credentials; a file that does not check out changes nothing.
import { afterAll, describe, expect, test } from "bun:test";
import { post, sendBody, tempDir, testConfigDoc, waitFor } from "../support/app.ts";
import { startMmscStub } from "../peers/mm7-stub.ts";
import { configFor, freePort, startBinary } from "../support/binary.ts";
import { startSink } from "../support/sink.ts";

const NEW_SECRET = "acme-rotated-callback-secret";
const sink = startSink(NEW_SECRET);
afterAll(() => sink.stop());

const oldKey = { "Chan-Api-Key": "acme-key-before" };
const newKey = { "Chan-Api-Key": "acme-key-after" };

describe("SIGHUP reloads MM7 carriers and accounts in the compiled binary", () => {
  test("a changed MMSC URL, rotated MMSC and account credentials and an added MM7 carrier take effect; the submit in flight finishes once", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const mmscA = await startMmscStub({ scenario: async () => (await held, { kind: "ok", messageId: "A-1" }) });
    const mmscB = await startMmscStub({ scenario: () => ({ kind: "ok", messageId: "B-1" }) });
    const mmscC = await startMmscStub({ scenario: () => ({ kind: "ok", messageId: "C-1" }) });
    const dir = tempDir();
    const doc = testConfigDoc(dir, {
      log: { level: "info" },
      accounts: [{ id: "acme", headers: oldKey, callback_secret: "acme-secret-before" }],
      carriers: { mms: { kind: "mm7", url: mmscA.url } },
      inbound: { mm7: { username: "mmsc", password: "inbound-before" } },
    });
    const gw = await startBinary(configFor(dir, doc), freePort());
    const mms = (to: string) => sendBody({ to, callback_url: sink.url, media: [] });
    try {
      const first = await post(gw.url, "/mms", mms("+447700900001"), oldKey);
      expect(first.status).toBe(200);
      await waitFor("the submit held at MMSC A", () => mmscA.received.length === 1);

      configFor(dir, {
        ...doc,
        accounts: [{ id: "acme", headers: newKey, callback_secret: NEW_SECRET }],
        carriers: { ...(doc.carriers as object), mms: { kind: "mm7", url: mmscB.url }, de_mmsc: { kind: "mm7", channel: "mms", url: mmscC.url } },
        inbound: { mm7: { username: "mmsc", password: "inbound-after" } },
        routes: [{ channel: "mms", prefixes: ["49"], carriers: ["de_mmsc"] }],
      });
      gw.proc.kill("SIGHUP");
      await waitFor("reloaded", () => gw.output().includes("carriers, routes and accounts reloaded") || gw.output().includes("reload refused"));
      expect(gw.output()).not.toContain("reload refused");
      expect(gw.output()).not.toContain("carrier sms changed");

      // Channel API: the rotated key only.
      expect((await post(gw.url, "/mms", mms("+447700900002"), oldKey)).status).toBe(401);
      const second = await post(gw.url, "/mms", mms("+447700900002"), newKey);
      const third = await post(gw.url, "/mms", mms("+4915112345678"), newKey);
      expect([second.status, third.status]).toEqual([200, 200]);
      await waitFor("new submits at B and C", () => mmscB.received.length === 1 && mmscC.received.length === 1);

      // The old carrier finishes what it had: one submit, at A, never resent to B.
      release();
      const inbound = (password: string) => ({ username: "mmsc", password, status: "Retrieved" });
      // The MMSC's endpoint follows the new credentials, for the replaced carrier and the added one.
      const refused = await mmscA.sendDeliveryReport(`${gw.url}/mm7`, { ...inbound("inbound-before"), messageId: "A-1" });
      expect(refused.status).toBe(401);
      await waitFor("A's answer stored", async () => (await mmscA.sendDeliveryReport(`${gw.url}/mm7`, { ...inbound("inbound-after"), messageId: "A-1" })).status === 200 && sink.byMessage(first.json.id).length > 0);
      expect((await mmscB.sendDeliveryReport(`${gw.url}/mm7`, { ...inbound("inbound-after"), messageId: "B-1" })).status).toBe(200);
      expect((await mmscC.sendDeliveryReport(`${gw.url}/mm7/de_mmsc`, { ...inbound("inbound-after"), messageId: "C-1" })).status).toBe(200);
      // Each final event signed with the rotated callback secret (the sink knows only that one).
      await waitFor("three delivered", () => [first, second, third].every((r) => sink.byMessage(r.json.id)[0]?.status === "delivered")).catch((e) => {
        console.log(gw.output().slice(-4000), sink.events.length, sink.badTokens);
        throw e;
      });
      expect(sink.badTokens).toBe(0);
      expect([mmscA.received.length, mmscB.received.length, mmscC.received.length]).toEqual([1, 1, 1]);
      await waitFor("drained", () => gw.output().includes("replaced and removed carriers drained"));
      expect(gw.output()).not.toContain("mm7:stopped");
      expect(mmscC.received[0]!.to[0]!.value).toContain("4915112345678");

      // A file that does not check out changes nothing, and the log says why.
      configFor(dir, { ...doc, carriers: { ...(doc.carriers as object), mms: { kind: "mm7", url: mmscB.url, timeout_ms: -5 } } });
      gw.proc.kill("SIGHUP");
      await waitFor("refused", () => gw.output().includes("reload refused"));
      expect(gw.output()).toContain("timeout_ms");
      expect((await post(gw.url, "/mms", mms("+447700900003"), oldKey)).status).toBe(401);
      expect((await post(gw.url, "/mms", mms("+447700900003"), newKey)).status).toBe(200);
      await waitFor("still submitted to B", () => mmscB.received.length === 2);
    } finally {
      release();
      gw.proc.kill();
      await gw.proc.exited;
      await Promise.all([mmscA.stop(), mmscB.stop(), mmscC.stop()]);
    }
  }, 60_000);
});
