// The session layer against the node-smpp SMSC simulator over real TCP: binds, window, throttling,
// timeouts, link drops, framing errors, bind failures, keepalive, graceful stop.
import { describe, expect, test } from "bun:test";
import { linesCarrying, secretForms } from "../support/secrets.ts";
import { everyLogLine, smppTestBed, sms } from "../peers/smpp-harness.ts";
import { startSmsc, type Smsc, } from "../peers/smpp-sim.ts";

const { setup, carrierOn } = smppTestBed();

describe("binds", () => {
  test("transceiver: bind, submit, TON/NPI and explicit data_coding on the wire", async () => {
    const { smsc, h } = await setup();
    expect(h.carrier.health()).toEqual([{ name: "sms:trx:0", state: "up", detail: expect.stringContaining("bound as transceiver") }]);
    const r = await h.carrier.submit(sms("Hello @ world", "+447700900123", "ACME"));
    expect(r).toEqual({ kind: "ok", carrierMessageIds: ["1000000"] });
    expect(smsc.binds).toMatchObject([{ command: "bind_transceiver", systemId: "esme", status: 0 }]);
    expect(smsc.submits[0]).toMatchObject({ sourceAddr: "ACME", sourceTon: 5, sourceNpi: 0, destAddr: "447700900123", destTon: 1, destNpi: 1, dataCoding: 0, registeredDelivery: 1, esmClass: 0 });
    expect(smsc.submits[0]!.raw.toString("hex")).toBe(Buffer.from([0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x00, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64]).toString("hex"));
    const r2 = await h.carrier.submit(sms("hi", "+447700900123", "+447700900999"));
    expect(r2.kind).toBe("ok");
    expect(smsc.submits[1]).toMatchObject({ sourceAddr: "447700900999", sourceTon: 1, sourceNpi: 1 });
    const r3 = await h.carrier.submit(sms("hi", "+447700900123", "12345"));
    expect(r3.kind).toBe("ok");
    expect(smsc.submits[2]).toMatchObject({ sourceAddr: "12345", sourceTon: 3, sourceNpi: 0 });
  });

  test("transmitter+receiver: submits on TX, receipts come in on RX and match the submit ids", async () => {
    const { smsc, h } = await setup({ sendReceipts: true }, { bind_mode: "transmitter+receiver" });
    expect(smsc.binds.map((b) => b.command).sort()).toEqual(["bind_receiver", "bind_transmitter"]);
    expect(h.carrier.health().map((x) => [x.name, x.state])).toEqual([["sms:tx:0", "up"], ["sms:rx:0", "up"]]);
    const results = await Promise.all([1, 2, 3].map((i) => h.carrier.submit(sms(`msg ${i}`))));
    const ids = results.flatMap((r) => (r.kind === "ok" ? r.carrierMessageIds : []));
    expect(ids.length).toBe(3);
    await smsc.waitFor(() => h.receipts.length === 3);
    expect(h.receipts.map((r) => r.carrierMessageId).sort()).toEqual(ids.sort());
    expect(h.receipts.every((r) => r.outcome === "delivered" && r.carrier === "sms")).toBe(true);
    // Every submit went over the TX connection.
    const tx = smsc.binds.find((b) => b.command === "bind_transmitter")!.connection;
    expect(smsc.submits.every((s) => s.connection === tx)).toBe(true);
  });

  test("several binds: submits go round-robin", async () => {
    const { smsc, h } = await setup({}, { binds: 2 });
    expect(h.carrier.health().map((x) => x.state)).toEqual(["up", "up"]);
    await Promise.all(Array.from({ length: 10 }, (_, i) => h.carrier.submit(sms(`n${i}`))));
    const byConn = new Map<number, number>();
    for (const s of smsc.submits) byConn.set(s.connection, (byConn.get(s.connection) ?? 0) + 1);
    expect([...byConn.values()]).toEqual([5, 5]);
  });

  test("bind refused for credentials: alarm, slow retry, then recovery", async () => {
    const started = Date.now();
    const { smsc, h } = await setup({ password: "right" }, { password: "wrong", bind_failure_retry_ms: 400 });
    expect(h.carrier.health()[0]).toMatchObject({ state: "alarm", detail: expect.stringContaining("ESME_RINVPASWD") });
    const r = await h.carrier.submit(sms("x"));
    expect(r).toMatchObject({ kind: "temporary", code: "smpp:not-bound" });
    await Bun.sleep(200);
    expect(smsc.binds.length).toBe(1); // no hammering at reconnect_min_ms
    await smsc.waitFor(() => smsc!.binds.length >= 2, 3000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    expect(smsc.binds[1]!.status).toBe(0x0e);
    // The password is never logged.
    expect(JSON.stringify(h.logs)).not.toContain("wrong");
  });

  test("wrong system_id (0x0F) also raises the alarm", async () => {
    const { h } = await setup({ systemId: "other" });
    expect(h.carrier.health()[0]).toMatchObject({ state: "alarm", detail: expect.stringContaining("ESME_RINVSYSID") });
  });

  test("TLS bind and submit", async () => {
    const dir = `/tmp/smpp-tls-${process.pid}`;
    const gen = Bun.spawnSync(["sh", "-c", `mkdir -p ${dir} && openssl req -x509 -newkey rsa:2048 -nodes -keyout ${dir}/k.pem -out ${dir}/c.pem -days 1 -subj /CN=localhost 2>/dev/null`]);
    if (gen.exitCode !== 0) throw new Error("openssl failed");
    const { h } = await setup({ tls: { key: await Bun.file(`${dir}/k.pem`).text(), cert: await Bun.file(`${dir}/c.pem`).text() } }, { tls: true, tls_verify: false });
    expect((await h.carrier.submit(sms("over TLS"))).kind).toBe("ok");
  });
});

describe("window and throttling", () => {
  test("outstanding submits never exceed the window", async () => {
    const { smsc, h } = await setup({ respondDelayMs: 20 }, { window: 4 });
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => h.carrier.submit(sms(`w${i}`))));
    expect(results.every((r) => r.kind === "ok")).toBe(true);
    expect(smsc.maxOutstanding).toBe(4);
    expect(h.carrier.counters()[0]!.counters.maxInFlight).toBe(4);
  });

  test("tps limits segments per second", async () => {
    const { smsc, h } = await setup({}, { tps: 20 });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 10 }, (_, i) => h.carrier.submit(sms(`t${i}`))));
    // Burst of 2 (a tenth of a second), then 20/s: 8 more take about 400 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(smsc.submitCount).toBe(10);
  });

  test("ESME_RTHROTTLED: temporary with retryAfter, and the bind pauses", async () => {
    const { smsc, h } = await setup({ throttleEvery: 2 }, { throttle_pause_ms: 300 });
    expect((await h.carrier.submit(sms("a"))).kind).toBe("ok");
    const r = await h.carrier.submit(sms("b"));
    expect(r).toEqual({ kind: "temporary", code: "smpp:0x58", message: "ESME_RTHROTTLED", retryAfterMs: 300 });
    const t0 = Date.now();
    expect((await h.carrier.submit(sms("c"))).kind).toBe("ok");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(smsc.submitCount).toBe(3);
  });

  test("status classes: 0x14 temporary, 0x0B permanent (never fallback), 0x45 permanent", async () => {
    const codes = [0x14, 0x0b, 0x45];
    const { h } = await setup({ submitStatus: (n) => codes[n - 1] });
    // A temporary status is retried with the ordinary backoff: only a throttle asks for throttle_pause_ms.
    expect(await h.carrier.submit(sms("a"))).toEqual({ kind: "temporary", code: "smpp:0x14", message: "ESME_RMSGQFUL" });
    expect(await h.carrier.submit(sms("b"))).toEqual({ kind: "permanent", code: "smpp:0x0B", message: "ESME_RINVDSTADR", fallbackEligible: false });
    expect(await h.carrier.submit(sms("c"))).toMatchObject({ kind: "permanent", code: "smpp:0x45" });
  });

  test("multipart: a part refused for good makes the message permanent; temporary makes it temporary", async () => {
    const { smsc, h } = await setup({ submitStatus: (n) => (n === 2 ? 0x0b : n === 4 ? 0x08 : 0) }, { window: 1 });
    expect(await h.carrier.submit(sms("x".repeat(400)))).toMatchObject({ kind: "permanent", code: "smpp:0x0B", message: "ESME_RINVDSTADR (part 2 of 3)" });
    // Window 1: part 3 was never sent once part 2 failed.
    expect(smsc.submitCount).toBe(2);
    expect(await h.carrier.submit(sms("y".repeat(200)))).toMatchObject({ kind: "temporary", code: "smpp:0x08" });
  });
});

describe("failures on the link", () => {
  test("no response: temporary timeout, the link stays up", async () => {
    const { h } = await setup({ neverAnswer: true }, { response_timeout_ms: 200 });
    const t0 = Date.now();
    const r = await h.carrier.submit(sms("lost"));
    // The SMSC read it and may have taken it: in doubt, so at-most-once never resends it.
    expect(r).toMatchObject({ kind: "temporary", code: "smpp:timeout", inDoubt: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(h.carrier.health()[0]!.state).toBe("up");
    expect(h.carrier.counters()[0]!.counters.timeouts).toBe(1);
  });

  test("SMSC drops the link mid-window: in-flight are temporary, reconnect on a fresh socket, later submits succeed", async () => {
    const { smsc, h } = await setup({ dropAfter: 3, respondDelayMs: 50 }, { window: 10 });
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => h.carrier.submit(sms(`d${i}`))));
    // All five were written in one window before the drop: each is in doubt.
    expect(results.map((r) => (r.kind === "temporary" ? `${r.code}${r.inDoubt ? " in doubt" : ""}` : r.kind))).toEqual(Array(5).fill("smpp:link-down in doubt"));
    await smsc.waitFor(() => h!.carrier.health()[0]!.state === "up" && smsc!.binds.length === 2);
    expect(smsc.connections).toBe(2);
    expect(new Set(smsc.binds.map((b) => b.connection)).size).toBe(2);
    expect((await h.carrier.submit(sms("after"))).kind).toBe("ok");
  });

  test("oversized command_length from the SMSC: generic_nack, reconnect, carry on", async () => {
    const { smsc, h } = await setup();
    const bad = Buffer.alloc(16);
    bad.writeUInt32BE(0x00ffffff, 0);
    bad.writeUInt32BE(0x05, 4);
    bad.writeUInt32BE(77, 12);
    smsc.sendRaw(bad);
    await smsc.waitFor(() => smsc!.nacks.length === 1 && smsc!.binds.length === 2);
    expect(smsc.nacks).toEqual([0x02]);
    await smsc.waitFor(() => h!.carrier.health()[0]!.state === "up");
    expect((await h.carrier.submit(sms("after garbage"))).kind).toBe("ok");
    expect(h.carrier.counters()[0]!.counters.framingErrors).toBe(1);
  });

  test("command_length below 16 is fatal too", async () => {
    const { smsc } = await setup();
    smsc.sendRaw(Buffer.from([0, 0, 0, 4, 1, 2, 3, 4]));
    await smsc.waitFor(() => smsc!.binds.length === 2);
  });

  test("a malformed body in a well-framed PDU: generic_nack, the session survives", async () => {
    const { smsc, h } = await setup();
    // deliver_sm whose service_type never ends within the frame.
    const bad = Buffer.concat([Buffer.alloc(16), Buffer.from("ABCDEFGH")]);
    bad.writeUInt32BE(bad.length, 0);
    bad.writeUInt32BE(0x05, 4);
    bad.writeUInt32BE(12, 12);
    smsc.sendRaw(bad);
    // An unknown command gets generic_nack 0x03.
    const unknown = Buffer.alloc(16);
    unknown.writeUInt32BE(16, 0);
    unknown.writeUInt32BE(0x0000_0222, 4);
    unknown.writeUInt32BE(13, 12);
    smsc.sendRaw(unknown);
    await smsc.waitFor(() => smsc!.nacks.length === 2);
    expect(smsc.nacks).toEqual([0x02, 0x03]);
    expect((await h.carrier.submit(sms("still here"))).kind).toBe("ok");
    expect(smsc.connections).toBe(1);
  });

  test("enquire_link unanswered: the session reconnects", async () => {
    const { smsc } = await setup({ ignoreEnquireLink: true }, { enquire_link_s: 0.05, response_timeout_ms: 100 });
    await smsc.waitFor(() => smsc!.connections >= 2, 3000);
    expect(smsc.enquireLinks).toBeGreaterThanOrEqual(1);
  });

  test("enquire_link answered: no reconnect", async () => {
    const { smsc } = await setup({}, { enquire_link_s: 0.05 });
    await Bun.sleep(300);
    expect(smsc.enquireLinks).toBeGreaterThanOrEqual(3);
    expect(smsc.connections).toBe(1);
  });

  test("the SMSC's enquire_link is answered", async () => {
    const { smsc } = await setup();
    expect(await smsc.enquireLink()).toBe(0);
  });

  test("hostile SMSC: 300 random frames (seeded) never crash the adapter; it recovers and submits", async () => {
    const { smsc, h } = await setup();
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const ids = [0x05, 0x15, 0x06, 0x80000004, 0x80000000, 0x04, 0x09, 0x103, 0x12345];
    for (let i = 0; i < 300; i++) {
      const body = Buffer.alloc(Math.floor(rnd() * 80));
      for (let k = 0; k < body.length; k++) body[k] = Math.floor(rnd() * 256);
      const f = Buffer.concat([Buffer.alloc(16), body]);
      f.writeUInt32BE(f.length, 0);
      f.writeUInt32BE(ids[Math.floor(rnd() * ids.length)]! >>> 0, 4);
      f.writeUInt32BE(Math.floor(rnd() * 1000), 12);
      smsc.sendRaw(f);
    }
    await Bun.sleep(100);
    await smsc.waitFor(() => h!.carrier.health()[0]!.state === "up");
    expect((await h.carrier.submit(sms("survived"))).kind).toBe("ok");
  });

  test("unbind from the SMSC: answered, then a new bind", async () => {
    const { smsc, h } = await setup();
    smsc.unbindAll();
    await smsc.waitFor(() => smsc!.binds.length === 2);
    await smsc.waitFor(() => h!.carrier.health()[0]!.state === "up");
    expect((await h.carrier.submit(sms("rebound"))).kind).toBe("ok");
  });

  test("SMSC not there: start() resolves, health down, submits temporary", async () => {
    const probe = await startSmsc();
    const port = probe.port;
    await probe.stop();
    const fake = { port } as Smsc;
    const h = await carrierOn(fake, { reconnect_min_ms: 50, reconnect_max_ms: 100 });
    expect(h.carrier.health()[0]!.state).toBe("down");
    // Nothing left: a plain temporary error, never in doubt.
    const r = await h.carrier.submit(sms("x"));
    expect(r).toMatchObject({ kind: "temporary", code: "smpp:not-bound" });
    expect(r.kind === "temporary" && r.inDoubt).toBeFalsy();
  });
});

describe("stop", () => {
  test("graceful: waits for in-flight, unbinds, then refuses new submits", async () => {
    const { smsc, h } = await setup({ respondDelayMs: 100 });
    const pending = h.carrier.submit(sms("in flight"));
    await Bun.sleep(20);
    await h.carrier.stop(2000);
    expect((await pending).kind).toBe("ok");
    expect(h.carrier.health()[0]!.state).toBe("idle");
    expect(await h.carrier.submit(sms("late"))).toMatchObject({ kind: "temporary", code: "smpp:stopped" });
    await smsc.waitFor(() => smsc!.openSessions === 0);
  });

  test("deadline passes with submits unanswered: they come back temporary", async () => {
    const { h } = await setup({ neverAnswer: true });
    const pending = h.carrier.submit(sms("stuck"));
    await Bun.sleep(20);
    const t0 = Date.now();
    await h.carrier.stop(200);
    expect(Date.now() - t0).toBeLessThan(1000);
    // On the wire when the carrier stopped: in doubt, so it is not resent after the restart.
    expect(await pending).toMatchObject({ kind: "temporary", code: "smpp:stopped", inDoubt: true });
  });

  test("a submit still waiting for a window slot at stop never left: temporary, not in doubt", async () => {
    const { smsc, h } = await setup({ neverAnswer: true }, { window: 1 });
    const written = h.carrier.submit(sms("on the wire"));
    const waiting = h.carrier.submit(sms("waiting"));
    await smsc.waitFor(() => smsc.submitCount === 1);
    await h.carrier.stop(100);
    expect(await written).toMatchObject({ kind: "temporary", code: "smpp:stopped", inDoubt: true });
    const r = await waiting;
    expect(r).toMatchObject({ kind: "temporary", code: "smpp:stopped" });
    expect(r.kind === "temporary" && r.inDoubt).toBeFalsy();
    expect(smsc.submits.map((x) => x.body.toString())).toEqual(["on the wire"]);
  });
});

describe("in doubt is exactly what was written (issue 11, items 10 and 11)", () => {
  test("link drop with more submits than the window: the written ones are in doubt, the waiting ones go out after the rebind", async () => {
    const window = 4;
    const { smsc, h } = await setup({ dropAfter: 3, respondDelayMs: 50 }, { window });
    const texts = Array.from({ length: 20 }, (_, i) => `q${i}`);
    const results = await Promise.all(texts.map((t) => h.carrier.submit(sms(t))));
    const inDoubt = texts.filter((_, i) => results[i]!.kind === "temporary" && (results[i] as { inDoubt?: boolean }).inDoubt);
    const delivered = texts.filter((_, i) => results[i]!.kind === "ok");
    // The first window was written before the drop; nothing else failed.
    expect(inDoubt).toEqual(texts.slice(0, window));
    expect(delivered).toEqual(texts.slice(window));
    const onConnection = (c: number) => smsc.submits.filter((x) => x.connection === c).map((x) => x.body.toString());
    // The SMSC read (some of) the in-doubt ones on the first connection, and each delivered one exactly once after the rebind.
    expect(texts.slice(0, window)).toEqual(expect.arrayContaining(onConnection(1)));
    expect(onConnection(1).length).toBeGreaterThanOrEqual(3);
    expect(onConnection(2).sort()).toEqual([...delivered].sort());
  });

  test("a multipart message cut after its first part was written: in doubt, and its other parts never go out after the rebind", async () => {
    const { smsc, h } = await setup({ dropAfter: 1, respondDelayMs: 50 }, { window: 1 });
    const r = await h.carrier.submit(sms("x".repeat(400)));
    expect(r).toMatchObject({ kind: "temporary", code: "smpp:link-down", message: "SMPP link dropped before the SMSC answered (part 1 of 3)", inDoubt: true });
    await smsc.waitFor(() => h!.carrier.health()[0]!.state === "up" && smsc!.binds.length === 2);
    expect((await h.carrier.submit(sms("after"))).kind).toBe("ok");
    expect(smsc.submits.map((x) => [x.connection, x.body.toString().slice(0, 5)])).toEqual([
      [1, "xxxxx"],
      [2, "after"],
    ]);
  });

  test("no rebind within response_timeout_ms: waiting submits come back not sent, not in doubt", async () => {
    const { smsc, h } = await setup({ neverAnswer: true }, { window: 2, response_timeout_ms: 300 });
    const all = Array.from({ length: 5 }, (_, i) => h.carrier.submit(sms(`n${i}`)));
    await smsc.waitFor(() => smsc.submitCount === 2);
    await smsc.stop();
    const results = await Promise.all(all);
    expect(results.slice(0, 2).map((r) => r.kind === "temporary" && r.code + (r.inDoubt ? " in doubt" : ""))).toEqual(Array(2).fill("smpp:link-down in doubt"));
    for (const r of results.slice(2)) {
      expect(r).toMatchObject({ kind: "temporary", code: "smpp:not-bound" });
      expect(r.kind === "temporary" && r.inDoubt).toBeFalsy();
    }
  });
});

test("no warning or error line of any carrier above carries a configured password", () => {
  expect(everyLogLine.filter((l) => l.level === "warn" || l.level === "error").length).toBeGreaterThan(0);
  expect(linesCarrying(everyLogLine, [...secretForms("esme", "secret"), ...secretForms("esme", "wrong")])).toEqual([]);
});
