// Several carriers at once over real TCP on loopback: three SMSC simulators and two MMSC stubs behind
// one gateway. Prefix and account routes, the fallback SMS routed like any SMS, receipts matched per
// carrier when two carriers issue the same id, MO by number, failover when an SMSC goes away in the
// middle of traffic, and failback when it returns.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { App } from "../../src/app.ts";
import { ACME_KEY, ACME_SECRET, post, sendBody, startTestApp, testConfig, waitFor } from "../support/app.ts";
import { scrape } from "../support/metrics.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { startMmscStub, type MmscStub } from "../peers/mm7-stub.ts";
import { startSmsc, type Smsc } from "../peers/smpp-sim.ts";

const BETA_KEY = "beta-test-key";
const mmscAuth = { username: "mmsc", password: "in-secret" };
let app: App & { dir: string };
let smsc0: Smsc; // carriers.sms: the default SMS carrier
let smscA: Smsc; // uk_a: first choice for +44
let smscB: Smsc; // uk_b: second choice for +44, and account beta's carrier
let mmsc0: MmscStub; // carriers.mms
let mmsc2: MmscStub; // mmsc2: +33 MMS
let sink: Sink;
let acmeInbound: Sink;
let betaInbound: Sink;
let portA = 0;
// response_timeout_ms also bounds how long a submit waiting for a window slot waits for a re-bind
// after a drop before it goes back to the queue (and so to the next carrier).
const smppKeys = { kind: "smpp", host: "127.0.0.1", system_id: "gw", password: "pw", tps: 2000, reconnect_min_ms: 50, reconnect_max_ms: 200, response_timeout_ms: 2000 };
// Both SMSCs number their messages alike, so every id uk_a issues is also issued by uk_b.
const sameIds = { firstId: 7_000_000, sendReceipts: true, receiptDelayMs: 30, idBase: "dec" as const };

/** The gateway's configuration document (also re-read by the SIGHUP test, with additions). */
const overrides = (): Record<string, any> => ({
    accounts: [
      { id: "acme", headers: { "Chan-Api-Key": ACME_KEY }, callback_secret: ACME_SECRET, inbound_url: acmeInbound.url, inbound_numbers: ["1888555*"] },
      { id: "beta", headers: { "Chan-Api-Key": BETA_KEY }, callback_secret: ACME_SECRET, inbound_url: betaInbound.url, inbound_numbers: ["18005550100"] },
    ],
    carriers: {
      mms: { kind: "mm7", url: mmsc0.url },
      sms: { ...smppKeys, port: smsc0.port },
      uk_a: { ...smppKeys, port: smscA.port },
      uk_b: { ...smppKeys, port: smscB.port },
      mmsc2: { kind: "mm7", url: mmsc2.url },
    },
    routes: [
      { channel: "sms", prefixes: ["44"], carriers: ["uk_a", "uk_b"] },
      { channel: "sms", accounts: ["beta"], carriers: ["uk_b"] },
      { channel: "mms", prefixes: ["33"], carriers: ["mmsc2", "mms"] },
    ],
    delivery: { failover_probe_ms: 200, failover_after_errors: 3 },
    inbound: { mm7: { username: "mmsc", password: "in-secret" } },
  });

beforeAll(async () => {
  sink = startSink(ACME_SECRET);
  acmeInbound = startSink(ACME_SECRET);
  betaInbound = startSink(ACME_SECRET);
  smsc0 = await startSmsc({ sendReceipts: true, receiptDelayMs: 30, firstId: 1 });
  smscA = await startSmsc({ ...sameIds, respondDelayMs: 5 });
  portA = smscA.port;
  smscB = await startSmsc({ ...sameIds, receiptStat: "UNDELIV" });
  // Both MMSCs answer with the same message id for their n-th submit.
  const mmsc = () => {
    let n = 0;
    return (req: { to: { value: string }[] }) => {
      if (req.to[0]?.value.endsWith("77")) return { kind: "status" as const, code: 2002, text: "Address Error" };
      return { kind: "ok" as const, messageId: `mm-${++n}` };
    };
  };
  mmsc0 = await startMmscStub({ scenario: mmsc() });
  mmsc2 = await startMmscStub({ scenario: mmsc() });
  app = await startTestApp(overrides());
  await waitFor("three SMSCs bound", () => smsc0.openSessions > 0 && smscA.openSessions > 0 && smscB.openSessions > 0);
});

afterAll(async () => {
  await app.stop();
  for (const s of [smsc0, smscA, smscB]) await s.stop();
  await mmsc0.stop();
  await mmsc2.stop();
  for (const s of [sink, acmeInbound, betaInbound]) s.stop();
});

const sms = (to: string, text: string, extra: Record<string, unknown> = {}) => sendBody({ to, text, callback_url: sink.url, subject: undefined, fallback_text: undefined, ...extra });
const finalOf = (id: string) => waitFor(`final event of ${id}`, () => sink.byMessage(id)[0]);
const carrierOf = async (id: string) => ((await app.store.describe(id)) as { carrier: string }).carrier;

describe("receipts per carrier", () => {
  // These run first: each carrier's first message gets the same id from its SMSC or MMSC.
  test("the same message id from two SMSCs: each receipt finds the message of its own carrier", async () => {
    // uk_a and uk_b both number from 7000000: their first messages share the id. uk_a reports DELIVRD,
    // uk_b UNDELIV; matched by id alone, one of the two would get the other's report.
    const viaA = await post(app.url, "/sms", sms("+447700900003", "same-id-a"));
    const viaB = await post(app.url, "/sms", sms("+12025550004", "same-id-b"), { "Chan-Api-Key": BETA_KEY });
    const [a, b] = [await finalOf(viaA.json.id), await finalOf(viaB.json.id)];
    const idsA = ((await app.store.describe(viaA.json.id)) as { carrierIds: unknown[] }).carrierIds;
    const idsB = ((await app.store.describe(viaB.json.id)) as { carrierIds: unknown[] }).carrierIds;
    expect(idsA).toEqual([{ carrier: "uk_a", carrier_id: "7000000", part: 0, outcome: "delivered" }]);
    expect(idsB).toEqual([{ carrier: "uk_b", carrier_id: "7000000", part: 0, outcome: "failed" }]);
    expect(a).toMatchObject({ status: "delivered" });
    expect(b).toMatchObject({ status: "failed" });
  });

  test("the same MM7 message id from two MMSCs, each reporting to its own endpoint", async () => {
    const fr = await post(app.url, "/mms", sendBody({ to: "+33612340001", callback_url: sink.url }));
    const us = await post(app.url, "/mms", sendBody({ to: "+12025550005", callback_url: sink.url }));
    const submitted = async (id: string) => ((await app.store.describe(id)) as { state: string }).state === "submitted";
    await waitFor("both submitted", async () => (await submitted(fr.json.id)) && (await submitted(us.json.id)));
    const ids = async (id: string) => ((await app.store.describe(id)) as { carrierIds: { carrier: string; carrier_id: string }[] }).carrierIds.map((c) => `${c.carrier}/${c.carrier_id}`);
    expect(await ids(fr.json.id)).toEqual(["mmsc2/mm-1"]);
    expect(await ids(us.json.id)).toEqual(["mms/mm-1"]);
    // Each MMSC reports on its own endpoint: mmsc2 says its mm-1 was rejected, carriers.mms that its was retrieved.
    expect((await mmsc2.sendDeliveryReport(`${app.url}/mm7/mmsc2`, { messageId: "mm-1", status: "Rejected", ...mmscAuth })).status).toBe(200);
    expect((await mmsc0.sendDeliveryReport(`${app.url}/mm7`, { messageId: "mm-1", status: "Retrieved", ...mmscAuth })).status).toBe(200);
    expect(await finalOf(fr.json.id)).toMatchObject({ status: "failed" });
    expect(await finalOf(us.json.id)).toMatchObject({ status: "delivered" });
  });
});

describe("routes", () => {
  test("by prefix and by account; no match → the channel's default carrier", async () => {
    const uk = await post(app.url, "/sms", sms("+447700900001", "route-uk"));
    const us = await post(app.url, "/sms", sms("+12025550001", "route-us"));
    const beta = await post(app.url, "/sms", sms("+12025550002", "route-beta"), { "Chan-Api-Key": BETA_KEY });
    const fr = await post(app.url, "/mms", sendBody({ to: "+33612345678" }));
    const us_mms = await post(app.url, "/mms", sendBody({ to: "+12025550003" }));
    for (const r of [uk, us, beta, fr, us_mms]) expect(r.status).toBe(200);
    await waitFor("SMS finals", async () => {
      for (const r of [uk, us, beta]) if (!sink.byMessage(r.json.id).length) return false;
      return true;
    });
    expect(smscA.submits.map((s) => s.destAddr)).toContain("447700900001");
    expect(smsc0.submits.map((s) => s.destAddr)).toContain("12025550001");
    expect(smscB.submits.map((s) => s.destAddr)).toContain("12025550002");
    expect([await carrierOf(uk.json.id), await carrierOf(us.json.id), await carrierOf(beta.json.id)]).toEqual(["uk_a", "sms", "uk_b"]);
    await waitFor("MMS submitted", () => mmsc2.received.some((s) => s.to[0]?.value.includes("33612345678")) && mmsc0.received.some((s) => s.to[0]?.value.includes("12025550003")));
    expect(mmsc0.received.some((s) => s.to[0]?.value.includes("33612345678"))).toBe(false);
    await waitFor("MMS submitted state", async () => (await carrierOf(fr.json.id)) === "mmsc2" && (await carrierOf(us_mms.json.id)) === "mms");
  });

  test("the fallback SMS of an MMS is routed like any SMS (+44 → uk_a)", async () => {
    const r = await post(app.url, "/mms", sendBody({ to: "+447700900077", fallback_text: "fallback-uk", callback_url: sink.url }));
    const e = await finalOf(r.json.id);
    expect(e).toMatchObject({ status: "delivered", channel: "sms", fallback: true });
    expect(smscA.submits.some((s) => s.raw.toString() === "fallback-uk")).toBe(true);
    expect(smsc0.submits.some((s) => s.raw.toString() === "fallback-uk")).toBe(false);
  });

  test("admin show says which carrier took each attempt", async () => {
    const r = await post(app.url, "/sms", sms("+447700900002", "show-me"));
    await finalOf(r.json.id);
    const d = (await app.store.describe(r.json.id)) as { history: { state: string; detail?: string }[] };
    expect(d.history.map((h) => h.detail ?? h.state)).toContain("claimed for uk_a");
    expect(d.history.some((h) => h.detail?.startsWith("submitted to uk_a as "))).toBe(true);
  });
});

describe("MO by number", () => {
  test("MO goes to the account owning the number; an unowned number to the first account with an inbound_url, counted", async () => {
    await smsc0.sendMo({ from: "12025550999", to: "18005550100", dataCoding: 0, shortMessage: Buffer.from("to-beta") });
    await smscB.sendMo({ from: "12025550999", to: "+18885551234", dataCoding: 0, shortMessage: Buffer.from("to-acme") });
    await smsc0.sendMo({ from: "12025550999", to: "15550000000", dataCoding: 0, shortMessage: Buffer.from("to-nobody") });
    await waitFor("beta MO", () => betaInbound.events.find((e) => e.text === "to-beta"));
    await waitFor("acme MO", () => acmeInbound.events.find((e) => e.text === "to-acme"));
    await waitFor("unowned MO", () => acmeInbound.events.find((e) => e.text === "to-nobody"));
    expect(betaInbound.events.map((e) => e.text)).toEqual(["to-beta"]);
    const m = await scrape(app.url);
    expect(m.get("gateway_inbound_unowned_total", { channel: "sms" })).toBe(1);
  });
});

describe("failover and failback", () => {
  test("an SMSC stopped mid-traffic: queued messages move to the next carrier, none is submitted twice, each ends with one final event; traffic returns when it is back", async () => {
    const n = 60;
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await post(app.url, "/sms", sms(`+4477009100${String(i).padStart(2, "0")}`, `fo-${i}`));
      expect(r.status).toBe(200);
      ids.push(r.json.id);
      if (i === 10) {
        await waitFor("traffic at uk_a", () => smscA.submits.some((s) => s.raw.toString().startsWith("fo-")));
        await smscA.stop();
      }
    }
    // Each message ends final, except those uk_a took whose receipts it had not sent when it stopped.
    const describe = async (id: string) => (await app.store.describe(id)) as { state: string; carrierIds: { carrier: string; carrier_id: string }[] };
    const waitingOnA = async () => {
      const out: string[] = [];
      for (const id of ids) {
        const d = await describe(id);
        if (d.state === "submitted" && d.carrierIds[0]?.carrier === "uk_a") out.push(id);
      }
      return out;
    };
    await waitFor("every message final or waiting for uk_a's receipt", async () => {
      const waiting = await waitingOnA();
      return ids.every((id) => sink.byMessage(id).length > 0 || waiting.includes(id));
    }, 30000);
    const submitted = (s: Smsc) => s.submits.map((x) => x.raw.toString()).filter((t) => t.startsWith("fo-"));
    const all = [...submitted(smscA), ...submitted(smscB), ...submitted(smsc0)];
    const counts = new Map<string, number>();
    for (const t of all) counts.set(t, (counts.get(t) ?? 0) + 1);
    expect([...counts.values()].filter((c) => c > 1)).toEqual([]);
    expect(submitted(smsc0)).toEqual([]);
    // Messages claimed after the stop went to uk_b (its receipts say UNDELIV: failed, but delivered there).
    expect(submitted(smscB).length).toBeGreaterThan(0);
    expect(submitted(smscA).length + submitted(smscB).length).toBeGreaterThanOrEqual(n - 10);
    const m = await scrape(app.url);
    expect(m.get("gateway_failovers_total", { carrier: "uk_a", to: "uk_b" })).toBeGreaterThan(0);
    expect(m.get("gateway_submissions_total", { carrier: "uk_b", outcome: "ok" })).toBeGreaterThan(0);
    expect(m.get("gateway_carrier_skipped", { carrier: "uk_a" })).toBe(1);
    expect(m.get("gateway_carrier_skipped", { carrier: "uk_b" })).toBe(0);
    expect(m.get("gateway_carrier_link_up", { carrier: "uk_a", link: "uk_a:trx:0" })).toBe(0);
    // uk_b backs uk_a up: the node stays ready (a load balancer keeps it) and names the link as degraded.
    const ready = await fetch(`${app.url}/readyz`);
    const readyBody = (await ready.json()) as { problems: string[]; degraded: string[] };
    expect(ready.status).toBe(200);
    expect(readyBody.problems).toEqual([]);
    expect(readyBody.degraded).toEqual([expect.stringContaining("carrier uk_a:trx:0: down")]);
    expect(m.get("gateway_ready")).toBe(1);

    // Failback: the SMSC returns on its port; once bound, +44 traffic goes to uk_a again.
    smscA = await startSmsc({ ...sameIds, firstId: 8_000_000, port: portA });
    // Bound, not only connected: the owed receipts go out on the new bind.
    await waitFor("uk_a bound again", async () => (await scrape(app.url)).get("gateway_carrier_link_up", { carrier: "uk_a", link: "uk_a:trx:0" }) === 1, 20000);
    // Back, the SMSC sends the receipts it still owed (as SMSCs do on the next bind).
    for (const id of await waitingOnA()) await smscA.sendReceipt({ id: (await describe(id)).carrierIds[0]!.carrier_id, stat: "DELIVRD" });
    await waitFor("every message final", () => ids.every((id) => sink.byMessage(id).length > 0), 30000);
    await Bun.sleep(200);
    for (const id of ids) expect(sink.byMessage(id)).toHaveLength(1);
    const back = await post(app.url, "/sms", sms("+447700900099", "failback"));
    expect(await finalOf(back.json.id)).toMatchObject({ status: "delivered" });
    expect(await carrierOf(back.json.id)).toBe("uk_a");
    expect(smscA.submits.some((s) => s.raw.toString() === "failback")).toBe(true);
    const after = await scrape(app.url);
    expect(after.get("gateway_carrier_skipped", { carrier: "uk_a" })).toBe(0);
    expect(after.get("gateway_carrier_link_up", { carrier: "uk_a", link: "uk_a:trx:0" })).toBe(1);
  });
});

describe("SIGHUP reload", () => {
  test("a new carrier and route take effect; the other carriers keep their binds (their bind counts do not change)", async () => {
    const smscC = await startSmsc({ sendReceipts: true, receiptDelayMs: 20 });
    try {
      const binds = () => [smsc0.binds.length, smscA.binds.length, smscB.binds.length];
      const before = binds();
      const doc = overrides();
      doc.carriers.uk_c = { ...smppKeys, port: smscC.port };
      doc.routes = [{ channel: "sms", prefixes: ["49"], carriers: ["uk_c"] }, ...doc.routes];
      const said = await app.reloadRouting(testConfig(app.dir, doc));
      expect(said).toEqual(["carrier uk_c added"]);
      await waitFor("uk_c bound", () => smscC.openSessions > 0);
      const de = await post(app.url, "/sms", sms("+4915112345678", "after-reload"));
      expect(await finalOf(de.json.id)).toMatchObject({ status: "delivered" });
      expect(await carrierOf(de.json.id)).toBe("uk_c");
      expect(smscC.submits.map((x) => x.raw.toString())).toEqual(["after-reload"]);
      const uk = await post(app.url, "/sms", sms("+447700900555", "still-uk"));
      await finalOf(uk.json.id);
      expect(await carrierOf(uk.json.id)).toBe("uk_a");
      expect(binds()).toEqual(before);
      // The same file again changes nothing; an MM7 carrier added starts beside the binds.
      expect(await app.reloadRouting(testConfig(app.dir, doc))).toEqual([]);
      doc.carriers.mmsc3 = { kind: "mm7", url: mmsc2.url };
      expect(await app.reloadRouting(testConfig(app.dir, doc))).toEqual(["carrier mmsc3 added"]);
      expect(binds()).toEqual(before);
    } finally {
      await smscC.stop();
    }
  });
});
