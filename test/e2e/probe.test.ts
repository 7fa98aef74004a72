// `mms-gateway probe`: against the SMSC simulator and the MMSC stub on loopback, in process (each
// verdict) and through the compiled binary (the lines an operator reads, the exit code). The probe
// must authenticate and send nothing: no submit_sm reaches the SMSC and no SubmitReq the MMSC.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { probeMmsc } from "../../adapters/mm7/probe.ts";
import { probeSmsc } from "../../adapters/smpp/probe.ts";
import { deepMerge, tempDir, testConfigDoc } from "../support/config-doc.ts";
import { binaryPath, configFor, freePort, requireBinary } from "../support/binary.ts";
import { mm7Settings, parseConfigText, smppSettings } from "../../src/config.ts";
import { startMmscStub, type MmscStub } from "../peers/mm7-stub.ts";
import { startSmsc, type Smsc } from "../peers/smpp-sim.ts";

let smsc: Smsc;
let mmsc: MmscStub;
let unsupported: MmscStub;

beforeAll(async () => {
  smsc = await startSmsc({ systemId: "esme1", password: "secret1" });
  mmsc = await startMmscStub({ username: "vasp", password: "mm7pass" });
  unsupported = await startMmscStub({ username: "vasp", password: "mm7pass", cancelSupported: false });
});
afterAll(async () => {
  await Promise.all([smsc.stop(), mmsc.stop(), unsupported.stop()]);
});

/** A gateway config document whose carriers are the loopback peers. */
function doc(sms: Record<string, unknown>, mms: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const dir = tempDir("gw-probe-");
  return {
    dir,
    doc: deepMerge(
      testConfigDoc(dir, {
        inbound: { mm7: { username: "mmsc", password: "in" } },
        carriers: {
          mms: { kind: "mm7", url: mmsc.url, username: "vasp", password: "mm7pass", vaspid: "vasp1", timeout_ms: 5000, ...mms },
          sms: { kind: "smpp", host: "127.0.0.1", port: smsc.port, system_id: "esme1", password: "secret1", connect_timeout_ms: 5000, response_timeout_ms: 5000, ...sms },
        },
      }),
      extra,
    ),
  };
}

async function settings(sms: Record<string, unknown> = {}, mms: Record<string, unknown> = {}) {
  const { dir, doc: d } = doc(sms, mms);
  const config = parseConfigText(await Bun.file(configFor(dir, d)).text());
  return { sms: smppSettings(config), mms: mm7Settings(config) };
}

describe("SMPP", () => {
  test("binds with the configured credentials, unbinds, submits nothing", async () => {
    const before = { binds: smsc.binds.length, unbinds: smsc.unbinds };
    const r = await probeSmsc((await settings()).sms);
    expect(r).toEqual({ verdict: "ok", detail: 'bound as transceiver ("esme1") and unbound' });
    expect(smsc.binds.slice(before.binds).map((b) => [b.command, b.status])).toEqual([["bind_transceiver", 0]]);
    await smsc.waitFor(() => smsc.unbinds === before.unbinds + 1 && smsc.openSessions === 0);
    expect(smsc.submits).toHaveLength(0);
  });

  test("transmitter+receiver: both binds the gateway would open", async () => {
    const before = smsc.binds.length;
    const r = await probeSmsc((await settings({ bind_mode: "transmitter+receiver" })).sms);
    expect(r.verdict).toBe("ok");
    expect(smsc.binds.slice(before).map((b) => b.command)).toEqual(["bind_transmitter", "bind_receiver"]);
  });

  test("a wrong password fails with the SMSC's status", async () => {
    const r = await probeSmsc((await settings({ password: "wrong" })).sms);
    expect(r.verdict).toBe("failed");
    expect(r.detail).toContain("ESME_RINVPASWD");
  });

  test("nothing listening fails as unreachable", async () => {
    const r = await probeSmsc((await settings({ port: freePort() })).sms);
    expect(r.verdict).toBe("failed");
    expect(r.detail).toMatch(/ECONNREFUSED|refused|closed/i);
  });
});

describe("MM7", () => {
  test("a CancelReq for an unknown message proves the credentials and delivers nothing", async () => {
    const cancels = mmsc.cancels.length;
    const r = await probeMmsc((await settings()).mms);
    expect(r.verdict).toBe("ok");
    expect(r.detail).toContain("2005 Message ID Not found");
    expect(mmsc.cancels.slice(cancels)).toHaveLength(1);
    expect(mmsc.cancels.at(-1)).toStartWith("mms-gateway-probe-");
    expect(mmsc.received).toHaveLength(0);
  });

  test("wrong credentials: the MMSC's 401 fails the probe", async () => {
    const r = await probeMmsc((await settings({}, { password: "wrong" })).mms);
    expect(r).toEqual({ verdict: "failed", detail: "credentials refused with the configured credentials: HTTP 401" });
  });

  test("an MMSC without CancelReq: reachable, credentials not verifiable", async () => {
    const r = await probeMmsc((await settings({}, { url: unsupported.url })).mms);
    expect(r.verdict).toBe("unverified");
    expect(r.detail).toStartWith("reachable, credentials not verifiable: CancelReq answered 4003 Unsupported operation");
  });

  test("nothing listening fails as unreachable", async () => {
    const r = await probeMmsc((await settings({}, { url: `http://127.0.0.1:${freePort()}/mm7` })).mms);
    expect(r.verdict).toBe("failed");
    expect(r.detail).toStartWith("unreachable: ");
  });
});

describe("the compiled binary", () => {
  // Spawned asynchronously: the peers live in this process and must keep answering meanwhile.
  async function probe(sms: Record<string, unknown>, mms: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    requireBinary();
    const { dir, doc: d } = doc(sms, mms, extra);
    const p = Bun.spawn([binaryPath, "probe", "--config", configFor(dir, d)], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, lines: out.trim().split("\n"), err };
  }

  test("every check passes: one line each, exit 0", async () => {
    const r = await probe({}, {}, { inbound: { listen: "0.0.0.0:0" } });
    expect(r.err).toBe("");
    expect(r.lines).toEqual([
      `ok          carrier mms (mm7 ${mmsc.url}): answered with the configured credentials: CancelReq of an unknown message → 2005 Message ID Not found: Message ID not found`,
      `ok          carrier sms (smpp 127.0.0.1:${smsc.port}): bound as transceiver ("esme1") and unbound`,
      'ok          inbound /mm7: on 0.0.0.0:0, Basic auth as "mmsc"',
      "ok          account acme inbound_url: not set: mobile-originated messages are only logged",
      'ok          callback URLs: webhooks may reach public addresses and egress.allow ["127.0.0.0/8"]',
    ]);
    expect(r.code).toBe(0);
  });

  test("a refused bind and a forbidden inbound_url each fail their line; exit 1", async () => {
    const r = await probe({ password: "wrong" }, {}, { accounts: [{ id: "acme", headers: { "Chan-Api-Key": "k" }, callback_secret: "s", inbound_url: "http://10.1.2.3/mo" }] });
    expect(r.code).toBe(1);
    expect(r.lines[0]).toStartWith("ok          carrier mms ");
    expect(r.lines[1]).toStartWith(`FAILED      carrier sms (smpp 127.0.0.1:${smsc.port}): transceiver bind as "esme1": `);
    expect(r.lines[1]).toContain("ESME_RINVPASWD");
    expect(r.lines[2]).toStartWith("unverified  inbound /mm7: server.listen 127.0.0.1:0 is loopback");
    expect(r.lines[3]).toBe("FAILED      account acme inbound_url: http://10.1.2.3/mo: egress refused: 10.1.2.3 is a private address");
  });

  test("a named carrier beside mms and sms is probed too (here its bind is refused: exit 1)", async () => {
    // Its own system_id: two carrier entries on one SMSC account are refused by the config check.
    const uk_b = { kind: "smpp", host: "127.0.0.1", port: smsc.port, system_id: "uk-b", password: "wrong", connect_timeout_ms: 5000, response_timeout_ms: 5000 };
    const r = await probe({}, {}, { carriers: { uk_b } });
    expect(r.code).toBe(1);
    expect(r.lines[0]).toStartWith("ok          carrier mms ");
    expect(r.lines[1]).toStartWith("ok          carrier sms ");
    expect(r.lines[2]).toStartWith(`FAILED      carrier uk_b (smpp 127.0.0.1:${smsc.port}): transceiver bind as "uk-b": bind refused`);
  });

  test("sandbox carriers (the shipped config) pass without contacting anything", async () => {
    const r = await probe({ kind: "sandbox" }, { kind: "sandbox" });
    expect(r.code).toBe(0);
    expect(r.lines.slice(0, 2)).toEqual([
      "ok          carrier mms (sandbox): sandbox: the embedded test carrier, nothing leaves this machine",
      "ok          carrier sms (sandbox): sandbox: the embedded test carrier, nothing leaves this machine",
    ]);
  });
});
