// The compiled binary with several carriers: check-config names route problems, and serve routes by
// prefix over two SMSC simulators (real TCP on loopback), the old two-carrier sections untouched.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ACME_SECRET, post, sendBody, tempDir, testConfigDoc, waitFor } from "../support/app.ts";
import { startSmsc } from "../peers/smpp-sim.ts";
import { binaryPath, configFor, freePort, startBinary } from "../support/binary.ts";
import { startSink } from "../support/sink.ts";

const sink = startSink(ACME_SECRET);
afterAll(() => sink.stop());

describe("routes in the compiled binary", () => {
  test("check-config names every route problem and exits 2", async () => {
    const path = join(tempDir(), "routes.toml");
    await Bun.write(
      path,
      `[carriers.uk_a]\nkind = "smpp"\n[carriers.box]\nkind = "sandbox"\n` +
        `[[routes]]\nchannel = "sms"\nprefixes = ["44"]\ncarriers = ["uk_a", "ghost"]\n` +
        `[[routes]]\nchannel = "mms"\nprefixes = ["+1"]\ncarriers = ["uk_a"]\n` +
        `[[routes]]\nchannel = "sms"\nprefixes = ["441"]\ncarriers = ["sms"]\n`,
    );
    const p = Bun.spawnSync([binaryPath, "check-config", path]);
    expect(p.exitCode).toBe(2);
    const err = p.stderr.toString();
    expect(err).toContain('carriers.box.channel: required for kind "sandbox"');
    // The shape is wrong (box), so semantic route checks wait: fix it and check again.
    await Bun.write(path, (await Bun.file(path).text()).replace('kind = "sandbox"\n', 'kind = "sandbox"\nchannel = "sms"\n'));
    const again = Bun.spawnSync([binaryPath, "check-config", path]).stderr.toString();
    expect(again).toContain('routes.0.carriers.1: unknown carrier "ghost"');
    expect(again).toContain('routes.1.carriers.0: carrier "uk_a" serves sms, the route is for mms');
    expect(again).toContain('routes.1.prefixes.0: a prefix is digits only (got "+1")');
    expect(again).toContain("routes.2: never used: routes.0 matches every message it would");
  });

  test("serve sends +44 to the route's SMSC and the rest to carriers.sms; SIGHUP adds a carrier and route without re-binding the others", async () => {
    const smsc0 = await startSmsc({ sendReceipts: true, receiptDelayMs: 20 });
    const smscA = await startSmsc({ sendReceipts: true, receiptDelayMs: 20 });
    const dir = tempDir();
    const smpp = { kind: "smpp", host: "127.0.0.1", tps: 1000, reconnect_min_ms: 100, reconnect_max_ms: 300 };
    const doc = testConfigDoc(dir, {
      log: { level: "info" },
      carriers: { sms: { ...smpp, port: smsc0.port }, uk_a: { ...smpp, port: smscA.port } },
      routes: [{ channel: "sms", prefixes: ["44"], carriers: ["uk_a", "sms"] }],
    });
    const gw = await startBinary(configFor(dir, doc), freePort());
    try {
      await waitFor("both bound", () => smsc0.openSessions > 0 && smscA.openSessions > 0);
      const sms = (to: string, text: string) => sendBody({ to, text, callback_url: sink.url, subject: undefined, fallback_text: undefined });
      const uk = await post(gw.url, "/sms", sms("+447700900123", "bin-uk"));
      const us = await post(gw.url, "/sms", sms("+12025550123", "bin-us"));
      await waitFor("both delivered", () => sink.byMessage(uk.json.id)[0]?.status === "delivered" && sink.byMessage(us.json.id)[0]?.status === "delivered");
      expect(smscA.submits.map((s) => s.raw.toString())).toEqual(["bin-uk"]);
      expect(smsc0.submits.map((s) => s.raw.toString())).toEqual(["bin-us"]);

      // SIGHUP with a route and a carrier added to the file: +49 goes to the new SMSC, the others keep their binds.
      const smscC = await startSmsc({ sendReceipts: true, receiptDelayMs: 20 });
      try {
        const binds = [smsc0.binds.length, smscA.binds.length];
        configFor(dir, { ...doc, carriers: { ...(doc.carriers as object), uk_c: { ...smpp, port: smscC.port } }, routes: [{ channel: "sms", prefixes: ["49"], carriers: ["uk_c"] }, ...(doc.routes as object[])] });
        gw.proc.kill("SIGHUP");
        // The new route takes effect once the reload is done, which is after uk_c has bound.
        await waitFor("reloaded", () => gw.output().includes("carriers, routes and accounts reloaded"));
        expect(smscC.openSessions).toBeGreaterThan(0);
        const de = await post(gw.url, "/sms", sms("+4915112345678", "bin-de"));
        await waitFor("delivered via uk_c", () => sink.byMessage(de.json.id)[0]?.status === "delivered");
        expect(smscC.submits.map((s) => s.raw.toString())).toEqual(["bin-de"]);
        expect([smsc0.binds.length, smscA.binds.length]).toEqual(binds);
      } finally {
        await smscC.stop();
      }
    } finally {
      gw.proc.kill();
      await gw.proc.exited;
      await smsc0.stop();
      await smscA.stop();
    }
  });

  test("/readyz stays ready and names the link degraded while one carrier of a route is down and the next takes over", async () => {
    const smsc0 = await startSmsc({ sendReceipts: true, receiptDelayMs: 20 });
    const smscA = await startSmsc({ sendReceipts: true, receiptDelayMs: 20 });
    const smscB = await startSmsc({ sendReceipts: true, receiptDelayMs: 20 });
    const dir = tempDir();
    const smpp = { kind: "smpp", host: "127.0.0.1", tps: 1000, reconnect_min_ms: 100, reconnect_max_ms: 300 };
    const doc = testConfigDoc(dir, {
      log: { level: "warn" },
      carriers: { sms: { ...smpp, port: smsc0.port }, uk_a: { ...smpp, port: smscA.port }, uk_b: { ...smpp, port: smscB.port } },
      routes: [{ channel: "sms", prefixes: ["44"], carriers: ["uk_a", "uk_b"] }],
    });
    const gw = await startBinary(configFor(dir, doc), freePort());
    const readyz = async () => {
      const r = await fetch(`${gw.url}/readyz`);
      return { status: r.status, body: (await r.json()) as { ready: boolean; problems: string[]; degraded: string[] } };
    };
    try {
      await waitFor("all bound", () => smsc0.openSessions > 0 && smscA.openSessions > 0 && smscB.openSessions > 0);
      expect((await readyz()).body.degraded).toEqual([]);
      await smscA.stop();
      const seen = await waitFor("uk_a degraded", async () => {
        const r = await readyz();
        return r.body.degraded.length > 0 && r;
      });
      expect(seen.status).toBe(200);
      expect(seen.body).toMatchObject({ ready: true, problems: [] });
      expect(seen.body.degraded).toEqual([expect.stringContaining("carrier uk_a:trx:0: down")]);
      const sms = sendBody({ to: "+447700900123", text: "via-b", callback_url: sink.url, subject: undefined, fallback_text: undefined });
      const sent = await post(gw.url, "/sms", sms);
      await waitFor("delivered via uk_b", () => sink.byMessage(sent.json.id)[0]?.status === "delivered");
      expect(smscB.submits.map((x) => x.raw.toString())).toEqual(["via-b"]);
    } finally {
      gw.proc.kill();
      await gw.proc.exited;
      await smsc0.stop();
      await smscB.stop();
    }
  });
});
