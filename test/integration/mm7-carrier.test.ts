// Submits over real HTTP to the stub MMSC on 127.0.0.1: what it receives, and how every kind of answer
// (and non-answer) is classified.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import type { MmsSubmit, SubmitResult } from "../../adapters/carrier.ts";
import { createMm7Carrier } from "../../adapters/mm7/mm7-carrier.ts";
import type { Mm7Settings } from "../../adapters/mm7/settings.ts";
import { linesCarrying, secretForms } from "../support/secrets.ts";
import { memoryLog, randomBytes, sampleSubmit } from "../support/mm7.ts";
import { MM7_NS_BASE, startMmscStub, submitRspXml, type MmscStub, type StubReply } from "../peers/mm7-stub.ts";

const events = { receipt: async () => {}, inbound: async () => {}, moIncomplete: () => {} };
let stub: MmscStub;
let reply: (to: string) => StubReply = () => ({ kind: "ok" });

beforeAll(async () => {
  // The recipient number selects the scenario, so one stub serves every test.
  stub = await startMmscStub({ username: "vasp-user", password: "vasp-pass", scenario: (req) => reply(req.to[0]!.value) });
});
afterAll(() => stub.stop());

// Every line any carrier of this file logs; the last test searches the warnings and alarms for secrets.
const logged = memoryLog();
const secrets = [...secretForms("vasp-user", "vasp-pass"), ...secretForms("vasp-user", "nope")];

async function carrierFor(over: Partial<Mm7Settings> = {}, log = logged.log) {
  const c = createMm7Carrier({ url: stub.url, username: "vasp-user", password: "vasp-pass", vaspid: "V", vasid: "S", service_code: "SC", timeout_ms: 2000, ...over }, { log, now: Date.now });
  await c.start(events);
  return c;
}

function submitTo(to: string, over: Partial<MmsSubmit> = {}): MmsSubmit {
  return sampleSubmit({ to, messageId: `m-${to}-${Math.random()}`, ...over });
}

describe("a successful submit", () => {
  test("the MMSC gets Basic auth, Content-Length, no chunking, SOAPAction \"\", and identical media bytes", async () => {
    const { log, lines } = memoryLog();
    const c = await carrierFor({}, log);
    reply = () => ({ kind: "ok", messageId: "MMSC-ID-1" });
    const img = randomBytes(100_000, 11);
    const m = submitTo("12025550100", { media: [{ contentType: "image/jpeg", bytes: img, cacheKey: "k-100k", filename: "big.jpg" }] });
    const before = stub.received.length;
    const r = await c.submit(m);
    expect(r).toEqual({ kind: "ok", carrierMessageIds: ["MMSC-ID-1"] });
    expect(stub.errors).toEqual([]);
    const got = stub.received[before]!;
    expect(got.http.authorization).toBe("Basic " + Buffer.from("vasp-user:vasp-pass").toString("base64"));
    expect(got.http.transferEncoding).toBeNull();
    expect(Number(got.http.contentLength)).toBeGreaterThan(100_000);
    expect(got.http.soapAction).toBe('""');
    expect(got).toMatchObject({ transactionId: m.messageId, mustUnderstand: "1", version: "6.8.0", vaspid: "V", vasid: "S", serviceCode: "SC", subject: m.subject, deliveryReport: "true", text: m.text });
    expect(got.to).toEqual([{ kind: "Number", value: "12025550100" }]);
    expect(Buffer.from(got.media[0]!.bytes).equals(Buffer.from(img))).toBe(true);
    expect(c.health()).toEqual([{ name: "mms", state: "up", detail: "last answer accepted" }]);
    expect(JSON.stringify(lines)).not.toContain("vasp-pass");
  });

  test("a campaign: the same cached image to many recipients arrives intact every time", async () => {
    const c = await carrierFor();
    reply = () => ({ kind: "ok" });
    const img = randomBytes(20_000, 12);
    const before = stub.received.length;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => c.submit(submitTo(`1202555${String(i).padStart(4, "0")}`, { media: [{ contentType: "image/png", bytes: img, cacheKey: "same", filename: "p.png" }] }))),
    );
    expect(results.every((r) => r.kind === "ok")).toBe(true);
    for (const got of stub.received.slice(before)) expect(Buffer.from(got.media[0]!.bytes).equals(Buffer.from(img))).toBe(true);
  });

  test("a slow answer within the timeout is fine", async () => {
    const c = await carrierFor({ timeout_ms: 2000 });
    reply = () => ({ kind: "delay", ms: 300, then: { kind: "ok", messageId: "SLOW" } });
    expect(await c.submit(submitTo("12025550101"))).toEqual({ kind: "ok", carrierMessageIds: ["SLOW"] });
  });

  test("credentials inside the URL (Mbuni style) become Basic auth", async () => {
    const u = new URL(stub.url);
    u.username = "vasp-user";
    u.password = "vasp-pass";
    const c = await carrierFor({ url: u.toString(), username: "", password: "" });
    reply = () => ({ kind: "ok", messageId: "URLAUTH" });
    expect(await c.submit(submitTo("12025550102"))).toEqual({ kind: "ok", carrierMessageIds: ["URLAUTH"] });
  });

  test("prefix style and a REL-5 preset are accepted by the stub's strict reader", async () => {
    const c = await carrierFor({ xml_style: "prefix", namespace: "REL-5-MM7-1-3", version: "5.3.0" });
    reply = () => ({ kind: "ok" });
    const before = stub.received.length;
    expect((await c.submit(submitTo("12025550103"))).kind).toBe("ok");
    expect(stub.received[before]).toMatchObject({ namespace: "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-3", version: "5.3.0" });
  });
});

describe("answers by status family", () => {
  const cases: [string, StubReply, Partial<SubmitResult> & Record<string, unknown>][] = [
    ["1100 partial success", { kind: "ok", code: 1100, messageId: "P1" }, { kind: "ok", carrierMessageIds: ["P1"] }],
    ["2002 address error (fallback)", { kind: "status", code: 2002 }, { kind: "permanent", code: "mm7:2002", fallbackEligible: true }],
    ["2007 format corrupt", { kind: "status", code: 2007 }, { kind: "permanent", code: "mm7:2007", fallbackEligible: false }],
    ["3000 server error", { kind: "status", code: 3000 }, { kind: "temporary", code: "mm7:3000" }],
    ["4006 unavailable, 200 with an error code", { kind: "status", code: 4006 }, { kind: "temporary", code: "mm7:4006" }],
    ["4007 denied, 200 with an error code", { kind: "status", code: 4007 }, { kind: "permanent", code: "mm7:4007", fallbackEligible: true }],
    ["fault 3000 with HTTP 500", { kind: "fault", code: 3000 }, { kind: "temporary", code: "mm7:3000" }],
    ["fault 2004 with HTTP 500", { kind: "fault", code: 2004 }, { kind: "permanent", code: "mm7:2004", fallbackEligible: false }],
    ["fault without detail, HTTP 500", { kind: "fault", code: 0, detail: "none" }, { kind: "permanent", code: "mm7:http-500" }],
    ["bare 503 with Retry-After", { kind: "raw", httpStatus: 503, body: "busy", headers: { "Retry-After": "30" } }, { kind: "temporary", code: "mm7:http-503", retryAfterMs: 30000 }],
    ["bare 502 with HTML", { kind: "raw", httpStatus: 502, body: "<html>bad gateway</html>", contentType: "text/html" }, { kind: "temporary", code: "mm7:http-502" }],
    // A 2xx nobody can read may be an accepted submit: in doubt (issue 11 item 9).
    ["garbage with 200", { kind: "raw", httpStatus: 200, body: "\u0000\u0001garbage" }, { kind: "temporary", code: "mm7:bad-response", inDoubt: true }],
    ["empty 200", { kind: "raw", httpStatus: 200 }, { kind: "temporary", code: "mm7:bad-response", inDoubt: true }],
    ["400 without body", { kind: "raw", httpStatus: 400 }, { kind: "permanent", code: "mm7:http-400" }],
  ];
  test.each(cases)("%s", async (_, stubReply, expected) => {
    const c = await carrierFor();
    reply = () => stubReply;
    const r = await c.submit(submitTo("12025550200"));
    expect(r).toMatchObject(expected);
    // An answer the MMSC gave leaves no doubt unless the case says so.
    if (!("inDoubt" in expected)) expect(r.kind === "temporary" && r.inDoubt).toBeFalsy();
  });
});

describe("what each answer does to the carrier's health and warnings", () => {
  const warnings = (lines: { level: string; msg: string }[]) => lines.filter((l) => l.level === "warn").map((l) => l.msg);
  const cases: [string, StubReply, { state: string; detail: string | RegExp }, string[]][] = [
    ["accepted with a MessageID", { kind: "ok", messageId: "H1" }, { state: "up", detail: "last answer accepted" }, []],
    [
      "accepted without a MessageID",
      { kind: "raw", httpStatus: 200, contentType: "text/xml", body: submitRspXml(`${MM7_NS_BASE}REL-6-MM7-1-4`, "6.8.0", undefined, 1000, "Success", undefined) },
      { state: "up", detail: "last answer accepted" },
      ["mm7 SubmitRsp accepted without MessageID: reports cannot be matched"],
    ],
    ["refused for good (2007)", { kind: "status", code: 2007 }, { state: "up", detail: "last answer mm7:2007" }, ["mm7 submit not accepted"]],
    ["refused for now by MM7 status (3000)", { kind: "status", code: 3000 }, { state: "up", detail: "last answer mm7:3000" }, ["mm7 submit not accepted"]],
    ["a bare HTTP 503", { kind: "raw", httpStatus: 503, body: "busy" }, { state: "down", detail: /503/ }, ["mm7 submit not accepted"]],
    ["a 200 nobody can read", { kind: "raw", httpStatus: 200, body: "garbage" }, { state: "down", detail: /./ }, ["mm7 submit not accepted"]],
    ["a bare HTTP 400 (refused for good, not an outage)", { kind: "raw", httpStatus: 400 }, { state: "up", detail: "last answer mm7:http-400" }, ["mm7 submit not accepted"]],
  ];
  test.each(cases)("%s", async (_, stubReply, health, warned) => {
    const { log, lines } = memoryLog();
    const c = await carrierFor({}, log);
    // A first accepted submit, so that "down" can only come from the answer under test.
    reply = () => ({ kind: "ok", messageId: "H0" });
    await c.submit(submitTo("12025550300"));
    lines.length = 0;
    reply = () => stubReply;
    await c.submit(submitTo("12025550301"));
    const [h] = c.health();
    expect(h!.state as string).toBe(health.state);
    if (typeof health.detail === "string") expect(h!.detail).toBe(health.detail);
    else expect(h!.detail).toMatch(health.detail);
    expect(warnings(lines)).toEqual(warned);
  });
});

describe("configuration errors and transport failures", () => {
  test("4001 and HTTP 401: temporary with a long retry, health alarm until an accepted submit", async () => {
    const c = await carrierFor();
    reply = () => ({ kind: "status", code: 4001 });
    expect(await c.submit(submitTo("12025550300"))).toMatchObject({ kind: "temporary", code: "mm7:4001", retryAfterMs: 300000 });
    expect(c.health()[0]!.state).toBe("alarm");
    const wrong = await carrierFor({ password: "nope" });
    expect(await wrong.submit(submitTo("12025550301"))).toMatchObject({ kind: "temporary", code: "mm7:http-401", retryAfterMs: 300000 });
    expect(wrong.health()[0]).toMatchObject({ state: "alarm" });
    stub.errors.length = 0;
    reply = () => ({ kind: "ok" });
    expect((await c.submit(submitTo("12025550302"))).kind).toBe("ok");
    expect(c.health()[0]!.state).toBe("up");
  });

  test("a hang ends at timeout_ms as temporary mm7:timeout; health down", async () => {
    const c = await carrierFor({ timeout_ms: 300 });
    reply = () => ({ kind: "hang" });
    const t = performance.now();
    expect(await c.submit(submitTo("12025550400"))).toMatchObject({ kind: "temporary", code: "mm7:timeout", inDoubt: true });
    expect(performance.now() - t).toBeLessThan(1500);
    expect(c.health()[0]!.state).toBe("down");
  });

  test("connection refused on a closed 127.0.0.1 port: temporary mm7:transport", async () => {
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const port = closed.port;
    await closed.stop(true);
    const c = await carrierFor({ url: `http://127.0.0.1:${port}/mm7` });
    // Nothing left: a plain temporary error, resent later whatever the in-flight policy.
    const r = await c.submit(submitTo("12025550401"));
    expect(r).toMatchObject({ kind: "temporary", code: "mm7:transport" });
    expect(r.kind === "temporary" && r.inDoubt).toBeFalsy();
    expect(c.health()[0]).toMatchObject({ state: "down" });
    expect(c.health()[0]!.detail).toContain(`127.0.0.1:${port}`);
  });

  test("an oversized message is permanent mm7:size and never sent", async () => {
    const c = await carrierFor({ max_message_bytes: 10_000 });
    const before = stub.received.length;
    const r = await c.submit(submitTo("12025550402", { media: [{ contentType: "image/jpeg", bytes: randomBytes(20_000), cacheKey: "big", filename: "b.jpg" }] }));
    expect(r).toMatchObject({ kind: "permanent", code: "mm7:size", fallbackEligible: false });
    // Just under the raw-bytes limit but over it once SMIL and headers count.
    const r2 = await c.submit(submitTo("12025550403", { text: "", media: [{ contentType: "image/jpeg", bytes: randomBytes(9_900), cacheKey: "edge", filename: "e.jpg" }] }));
    expect(r2).toMatchObject({ kind: "permanent", code: "mm7:size" });
    expect(stub.received.length).toBe(before);
    // Exactly at max_message_bytes it goes; one byte under the size it is refused.
    const edge = { text: "", messageId: "m-exact", media: [{ contentType: "image/jpeg", bytes: randomBytes(5_000), cacheKey: "exact", filename: "x.jpg" }] };
    const size = Number(/message is (\d+) bytes/.exec(((await (await carrierFor({ max_message_bytes: 5_001 })).submit(submitTo("12025550404", edge))) as { message: string }).message)![1]);
    reply = () => ({ kind: "ok", messageId: "EXACT" });
    expect(await (await carrierFor({ max_message_bytes: size })).submit(submitTo("12025550404", edge))).toEqual({ kind: "ok", carrierMessageIds: ["EXACT"] });
    expect(await (await carrierFor({ max_message_bytes: size - 1 })).submit(submitTo("12025550404", edge))).toMatchObject({ kind: "permanent", code: "mm7:size" });
  });
});

describe("admission: concurrency, rate, stop", () => {
  test("concurrency 2: the MMSC never sees more than 2 submits at once", async () => {
    const c = await carrierFor({ concurrency: 2 });
    let active = 0;
    let peak = 0;
    reply = () => {
      active++;
      peak = Math.max(peak, active);
      return { kind: "delay", ms: 80, then: { kind: "ok" } };
    };
    const done = Array.from({ length: 6 }, (_, i) => c.submit(submitTo(`120255506${i}0`)).finally(() => active--));
    const results = await Promise.all(done);
    expect(results.every((r) => r.kind === "ok")).toBe(true);
    expect(peak).toBe(2);
  });

  test("rate 20/s: 6 submits take at least 250 ms", async () => {
    const c = await carrierFor({ rate: 20, rate_burst: 1 });
    reply = () => ({ kind: "ok" });
    const t = performance.now();
    await Promise.all(Array.from({ length: 6 }, (_, i) => c.submit(submitTo(`120255507${i}0`))));
    expect(performance.now() - t).toBeGreaterThanOrEqual(245);
  });

  test("stop(deadline): queued submits fail temporary at once, in-flight ones are cut at the deadline", async () => {
    const c = await carrierFor({ concurrency: 1, timeout_ms: 10_000 });
    reply = () => ({ kind: "hang" });
    const inFlight = c.submit(submitTo("12025550800"));
    await Bun.sleep(50);
    const queued = c.submit(submitTo("12025550801"));
    const t = performance.now();
    await c.stop(200);
    const elapsed = performance.now() - t;
    const q = await queued;
    expect(q).toMatchObject({ kind: "temporary", code: "mm7:stopped" });
    expect(q.kind === "temporary" && q.inDoubt).toBeFalsy();
    expect(await inFlight).toMatchObject({ kind: "temporary", code: "mm7:stopped", inDoubt: true });
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(1500);
    expect(await c.submit(submitTo("12025550802"))).toMatchObject({ kind: "temporary", code: "mm7:stopped" });
  });
});

/**
 * A raw HTTP peer on 127.0.0.1 that reads one whole request (headers and Content-Length bytes), then
 * does `then` to the socket without a word of HTTP: what a crashing MMSC or a cutting middlebox does.
 */
async function cuttingPeer(then: (socket: net.Socket) => void) {
  const seen: { bytes: number; complete: boolean }[] = [];
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    const rec = { bytes: 0, complete: false };
    seen.push(rec);
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      rec.bytes = buf.length;
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0 || rec.complete) return;
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString("latin1"))?.[1] ?? NaN);
      if (buf.length >= end + 4 + length) {
        rec.complete = true;
        then(socket);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/mm7`, seen, stop: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("after the SubmitReq was sent, no answer is in doubt (issue 11 item 9)", () => {
  const cases: [string, (socket: net.Socket) => void][] = [
    ["the MMSC resets the connection after reading the request", (socket) => socket.resetAndDestroy()],
    ["the MMSC closes the connection after reading the request", (socket) => socket.end()],
  ];
  test.each(cases)("%s: temporary, in doubt", async (_, then) => {
    const peer = await cuttingPeer(then);
    try {
      const c = await carrierFor({ url: peer.url });
      const r = await c.submit(submitTo("12025550900"));
      expect(r).toMatchObject({ kind: "temporary", code: "mm7:connection-lost", inDoubt: true });
      expect(c.health()[0]!.state).toBe("down");
      // The whole SubmitReq reached the peer before it cut: exactly the case a resend would duplicate.
      expect(peer.seen.length).toBeGreaterThanOrEqual(1);
      expect(peer.seen.every((x) => x.complete)).toBe(true);
    } finally {
      await peer.stop();
    }
  });

  test("an https URL to a plain-HTTP MMSC fails in the TLS handshake, before sending: plain temporary", async () => {
    const received: Buffer[] = [];
    const server = net.createServer((socket) => {
      socket.on("error", () => {});
      // Answers the ClientHello in plain HTTP, as a server without TLS does.
      socket.once("data", (chunk: Buffer) => {
        received.push(chunk);
        socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const c = await carrierFor({ url: `https://127.0.0.1:${(server.address() as net.AddressInfo).port}/mm7` });
      const r = await c.submit(submitTo("12025550902"));
      expect(r).toMatchObject({ kind: "temporary", code: "mm7:transport" });
      expect(r.kind === "temporary" && r.inDoubt).toBeFalsy();
      // What reached it was a TLS record (0x16 handshake), not a request.
      expect(received.length).toBeGreaterThanOrEqual(1);
      expect(received.every((b) => b[0] === 0x16)).toBe(true);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test("an invalid URL fails before sending: plain temporary", async () => {
    const c = await carrierFor({ url: "http://[::1/mm7" });
    const r = await c.submit(submitTo("12025550901"));
    expect(r).toMatchObject({ kind: "temporary", code: "mm7:transport" });
    expect(r.kind === "temporary" && r.inDoubt).toBeFalsy();
  });
});

test("no warning or alarm line of any carrier above carries a configured secret", () => {
  // The scan covers the lines that matter: the alarm (4001, HTTP 401) and the down/not-accepted warnings.
  expect(logged.lines.some((l) => l.level === "error" && /alarm/.test(l.msg))).toBe(true);
  expect(logged.lines.filter((l) => l.level === "warn").length).toBeGreaterThan(0);
  expect(linesCarrying(logged.lines, secrets)).toEqual([]);
});
