// The inbound endpoint as a function: reports, MO, read replies, auth, limits, hostile and mangled input.
import { describe, expect, test } from "bun:test";
import type { CarrierEvents, CarrierReceipt, InboundMessage } from "../../adapters/carrier.ts";
import { createMm7Carrier } from "../../adapters/mm7/mm7-carrier.ts";
import type { Mm7Settings } from "../../adapters/mm7/settings.ts";
import { buildDeliverReqMessage, buildDeliveryReportReq } from "../peers/mm7-stub.ts";
import { fixtureBytes, memoryLog, randomBytes, seeded, silentLog } from "../support/mm7.ts";
import { extractChild, validateMm7 } from "../support/mm7-xsd.ts";

const nsOf = (rel: string) => `http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/${rel}`;
const now = () => 1_700_000_000_000;

function collector(fail = false) {
  const receipts: CarrierReceipt[] = [];
  const inbound: InboundMessage[] = [];
  const events: CarrierEvents = {
    async receipt(r) {
      if (fail) throw new Error("disk full");
      receipts.push(r);
    },
    async inbound(m) {
      if (fail) throw new Error("disk full");
      inbound.push(m);
    },
    moIncomplete() {},
  };
  return { receipts, inbound, events };
}

async function carrier(over: Partial<Mm7Settings> = {}, fail = false, log = silentLog) {
  const c = createMm7Carrier({ url: "http://127.0.0.1:9/mm7", ...over }, { log, now });
  const col = collector(fail);
  await c.start(col.events);
  return { c, ...col };
}

const post = (body: string | Uint8Array, contentType = "text/xml", headers: Record<string, string> = {}) =>
  new Request("http://gw/mm7", { method: "POST", body, headers: { "Content-Type": contentType, ...headers } });

describe("DeliveryReportReq", () => {
  test("becomes a receipt; the answer echoes TransactionID and namespace and validates", async () => {
    const { c, receipts } = await carrier();
    for (const rel of ["REL-6-MM7-1-4", "REL-5-MM7-1-0"]) {
      const req = buildDeliveryReportReq({ messageId: "MID-7", status: "Retrieved", transactionId: "tx-42", date: "2024-05-01T10:00:00Z", namespace: rel, version: rel.startsWith("REL-5") ? "5.3.0" : "6.8.0" });
      const res = await c.handleInbound(post(req));
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body).toContain(`<TransactionID xmlns="${nsOf(rel)}" env:mustUnderstand="1">tx-42</TransactionID>`);
      expect(body).toContain("<StatusCode>1000</StatusCode>");
      const [checked] = await validateMm7([{ name: "DeliveryReportRsp", xml: extractChild(body, "Body") }], nsOf(rel));
      expect(checked!.errors).toEqual([]);
      expect(checked!.valid).toBe(true);
    }
    expect(receipts[0]).toEqual({ carrier: "mms", carrierMessageId: "MID-7", outcome: "delivered", code: "mm7:Retrieved", message: "Retrieved", timestamp: Date.parse("2024-05-01T10:00:00Z") });
  });

  test("failed with fallback, pending, unknown; missing Date → now", async () => {
    const { c, receipts } = await carrier();
    const doc = (status: string) => `<Envelope><Body><DeliveryReportReq><MessageID>M</MessageID><MMStatus>${status}</MMStatus></DeliveryReportReq></Body></Envelope>`;
    for (const st of ["unrecognised", "Expired", "Deferred", "Indeterminate"]) expect((await c.handleInbound(post(doc(st)))).status).toBe(200);
    expect(receipts.map((r) => [r.outcome, r.fallbackEligible, r.timestamp])).toEqual([
      ["failed", true, now()],
      ["failed", false, now()],
      ["pending", undefined, now()],
      ["unknown", undefined, now()],
    ]);
  });

  test("the Skycore sample, bare XML under a multipart/related header", async () => {
    const { c, receipts } = await carrier();
    const res = await c.handleInbound(post(await fixtureBytes("skycore_deliveryreportreq.xml"), 'multipart/related; type="text/xml";'));
    expect(res.status).toBe(200);
    expect(receipts[0]!.carrierMessageId).toBe("369500617770864640");
  });

  test("a pipeline failure answers a temporary fault (4006, HTTP 500) so the MMSC retries", async () => {
    const { c } = await carrier({}, true);
    const res = await c.handleInbound(post(buildDeliveryReportReq({ messageId: "M", status: "Retrieved", transactionId: "t1" })));
    expect(res.status).toBe(500);
    const body = await res.text();
    expect(body).toContain("<StatusCode>4006</StatusCode>");
    expect(body).toContain(">t1</TransactionID>");
    const [checked] = await validateMm7([{ name: "VASPErrorRsp", xml: extractChild(body, "detail") }], nsOf("REL-6-MM7-1-4"));
    expect(checked!.errors).toEqual([]);
  });

  test("before start(): 4006 (not ready), never a lost report", async () => {
    const c = createMm7Carrier({}, { log: silentLog, now });
    const res = await c.handleInbound(post(buildDeliveryReportReq({ messageId: "M", status: "Retrieved" })));
    expect(res.status).toBe(500);
    expect(await res.text()).toContain("<StatusCode>4006</StatusCode>");
  });

  test("missing MessageID → 4004 validation error", async () => {
    const { c } = await carrier();
    const res = await c.handleInbound(post(`<Envelope><Body><DeliveryReportReq><MMStatus>Retrieved</MMStatus></DeliveryReportReq></Body></Envelope>`));
    expect(await res.text()).toContain("<StatusCode>4004</StatusCode>");
  });
});

describe("DeliverReq (MO)", () => {
  test("text, media and addresses from a stub-built DeliverReq; the answer validates", async () => {
    const { c, inbound } = await carrier();
    const img = randomBytes(3000, 9);
    const { contentType, body } = buildDeliverReqMessage({ from: "+12025550123", to: "12345", subject: "Re: hi", text: "STOP ünïcode", media: [{ contentType: "image/png", filename: "pic.png", bytes: img }], linkedId: "L-1", transactionId: "mo-1" });
    const res = await c.handleInbound(post(body, contentType));
    expect(res.status).toBe(200);
    const answer = await res.text();
    const [checked] = await validateMm7([{ name: "DeliverRsp", xml: extractChild(answer, "Body") }], nsOf("REL-6-MM7-1-4"));
    expect(checked!.errors).toEqual([]);
    expect(inbound[0]).toMatchObject({ carrier: "mms", channel: "mms", carrierMessageId: "L-1", from: "+12025550123", to: "12345", subject: "Re: hi", text: "STOP ünïcode" });
    expect(inbound[0]!.media).toEqual([{ contentType: "image/png", filename: "pic.png", base64: Buffer.from(img).toString("base64") }]);
  });

  test("Nokia MC5.0 sample: /TYPE=PLMN stripped, GIF as media, SMIL dropped", async () => {
    const { c, inbound } = await carrier();
    const body = await fixtureBytes("instantcom_deliver-req3_nokia-mc5_REL-6-MM7-1-4.mime");
    const res = await c.handleInbound(post(body, 'multipart/related; boundary="Nokia-mm-messageHandler-BoUnDaRy-=_-735647067"; type="text/xml"'));
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("4E073C7AQ479306TW26785I371H3M1HA");
    expect(inbound[0]).toMatchObject({ from: "+3859100010010", to: "88888", subject: "Bomb", timestamp: Date.parse("2010-04-02T10:52:26Z") });
    expect(inbound[0]!.media.map((m) => [m.contentType, m.filename])).toEqual([["image/gif", "Bomb.gif"]]);
  });

  test("GB2312 sample: subject and text decoded", async () => {
    const { c, inbound } = await carrier();
    const res = await c.handleInbound(post(await fixtureBytes("gb2312_deliver-req_REL-6-MM7-1-0.mime"), 'multipart/related; boundary="==gbpart"'));
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(nsOf("REL-6-MM7-1-0"));
    expect(inbound[0]).toMatchObject({ subject: "彩信主题", text: "你好，世界", from: "8613111111111", to: "10655", carrierMessageId: "cu-linked-77" });
  });
});

describe("ReadReplyReq, unknown and malformed requests", () => {
  test("ReadReplyReq is acknowledged without an event", async () => {
    const { c, receipts, inbound } = await carrier();
    const doc = `<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header><TransactionID xmlns="${nsOf("REL-6-MM7-1-4")}">rr</TransactionID></env:Header><env:Body><ReadReplyReq xmlns="${nsOf("REL-6-MM7-1-4")}"><MM7Version>6.8.0</MM7Version><MessageID>M</MessageID><Recipient><Number>1</Number></Recipient><Sender><Number>2</Number></Sender><TimeStamp>2024-01-01T00:00:00Z</TimeStamp><MMStatus>Read</MMStatus></ReadReplyReq></env:Body></env:Envelope>`;
    const res = await c.handleInbound(post(doc));
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain("ReadReplyRsp");
    const [checked] = await validateMm7([{ name: "ReadReplyRsp", xml: extractChild(body, "Body") }], nsOf("REL-6-MM7-1-4"));
    expect(checked!.errors).toEqual([]);
    expect(receipts.length + inbound.length).toBe(0);
  });

  test.each([
    ["unsupported operation", `<Envelope><Body><CancelReq/></Body></Envelope>`, 4003],
    ["no body", `<Envelope><Header/></Envelope>`, 2007],
    ["garbage", `this is not xml`, 2007],
    ["empty", ``, 2007],
  ])("%s → VASPErrorRsp %d", async (_, doc, code) => {
    const { c } = await carrier();
    const res = await c.handleInbound(post(doc));
    expect(res.status).toBe(500);
    expect(await res.text()).toContain(`<StatusCode>${code}</StatusCode>`);
  });

  test("GET is refused with 405", async () => {
    const { c } = await carrier();
    expect((await c.handleInbound(new Request("http://gw/mm7"))).status).toBe(405);
  });
});

describe("inbound Basic auth", () => {
  const dr = buildDeliveryReportReq({ messageId: "M", status: "Retrieved" });
  const basic = (u: string, p: string) => ({ Authorization: "Basic " + Buffer.from(`${u}:${p}`).toString("base64") });

  test("required when configured: 401 + WWW-Authenticate, then accepted with the right credentials (scheme in any case)", async () => {
    const { log, lines } = memoryLog();
    const { c, receipts } = await carrier({ inbound_username: "mmsc", inbound_password: "s3cret-pw" }, false, log);
    for (const h of [{}, basic("mmsc", "wrong"), basic("other", "s3cret-pw"), { Authorization: "Bearer x" }]) {
      const res = await c.handleInbound(post(dr, "text/xml", h));
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Basic realm="mm7"');
    }
    expect(receipts.length).toBe(0);
    const ok = await c.handleInbound(post(dr, "text/xml", { Authorization: "basic " + Buffer.from("mmsc:s3cret-pw").toString("base64") }));
    expect(ok.status).toBe(200);
    expect(JSON.stringify(lines)).not.toContain("s3cret-pw");
  });
});

describe("limits and hostile input", () => {
  test("a body over the limit is refused with 413, by header and by actual size", async () => {
    const { c } = await carrier({ inbound_max_bytes: 2048 });
    const big = "<a>" + "x".repeat(5000) + "</a>";
    const byHeader = await c.handleInbound(post(big));
    expect(byHeader.status).toBe(413);
    const stream = new ReadableStream({
      start(ctl) {
        ctl.enqueue(new TextEncoder().encode(big));
        ctl.close();
      },
    });
    const res = await c.handleInbound(new Request("http://gw/mm7", { method: "POST", body: stream, headers: { "Content-Type": "text/xml" } }));
    expect(res.status).toBe(413);
    expect(await res.text()).toContain("<StatusCode>2004</StatusCode>");
  });

  test.each([
    ["entity bomb", `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">]><Envelope><Body><DeliveryReportReq><MessageID>&g;</MessageID><MMStatus>Retrieved</MMStatus></DeliveryReportReq></Body></Envelope>`],
    ["external entity", `<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><Envelope><Body><DeliveryReportReq><MessageID>&x;</MessageID><MMStatus>Retrieved</MMStatus></DeliveryReportReq></Body></Envelope>`],
    ["DOCTYPE in a multipart SOAP part", `--b\r\nContent-Type: text/xml\r\n\r\n<!DOCTYPE x [<!ENTITY y "z">]><Envelope/>\r\n--b--`],
  ])("%s is refused with 2007, quickly, and no event is raised", async (_, doc) => {
    const { c, receipts } = await carrier();
    const t = performance.now();
    const res = await c.handleInbound(post(doc, doc.startsWith("--") ? 'multipart/related; boundary="b"' : "text/xml"));
    expect(performance.now() - t).toBeLessThan(100);
    expect(res.status).toBe(500);
    expect(await res.text()).toContain("<StatusCode>2007</StatusCode>");
    expect(receipts.length).toBe(0);
  });
});

describe("mutated input never escapes handleInbound", () => {
  test("3000 deterministic mutations of real requests all get a proper SOAP or HTTP answer", async () => {
    const seeds = [
      new TextEncoder().encode(buildDeliveryReportReq({ messageId: "M", status: "Retrieved", transactionId: "t" })),
      await fixtureBytes("instantcom_deliver-req3_nokia-mc5_REL-6-MM7-1-4.mime"),
      await fixtureBytes("gb2312_deliver-req_REL-6-MM7-1-0.mime"),
      buildDeliverReqMessage({ from: "1", to: "2", text: "t", media: [{ contentType: "image/gif", filename: "a.gif", bytes: randomBytes(300) }] }).body,
    ];
    const types = [
      "text/xml",
      'multipart/related; boundary="Nokia-mm-messageHandler-BoUnDaRy-=_-735647067"',
      'multipart/related; boundary="==gbpart"; charset=gb2312',
      "multipart/related; boundary=",
      "application/xml; charset=bogus-charset",
    ];
    const tokens = ["<", ">", "</", "&", "&amp;", "]]>", "<![CDATA[", "<!DOCTYPE x>", "--", "\r\n", "\n\n", "=", '"', "xmlns=", ":", "\u0000", "\uFFFF", "cid:", "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"];
    const rand = seeded(20240501);
    const pick = <T>(a: T[]) => a[Math.floor(rand() * a.length)]!;
    const { c } = await carrier();
    let answered = 0;
    const statuses: Record<number, number> = {};
    for (let i = 0; i < 3000; i++) {
      const base = Buffer.from(pick(seeds));
      let b: Buffer = base;
      for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) {
        const at = Math.floor(rand() * (b.length + 1));
        const op = rand();
        if (op < 0.3) b = Buffer.concat([b.subarray(0, at), Buffer.from(pick(tokens)), b.subarray(at)]);
        else if (op < 0.55) b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + Math.floor(rand() * 64)))]);
        else if (op < 0.8) {
          b = Buffer.from(b);
          if (at < b.length) b[at] = Math.floor(rand() * 256);
        } else b = b.subarray(0, at);
      }
      const ct = rand() < 0.7 && i % 4 !== 0 ? pick(types) : pick(types.slice(0, 1));
      const res = await c.handleInbound(post(new Uint8Array(b), ct));
      expect([200, 413, 500]).toContain(res.status);
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      const text = await res.text();
      expect(text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?><env:Envelope/);
      answered++;
    }
    expect(answered).toBe(3000);
    // Both paths are exercised: some mutations still parse and are taken, most are refused.
    expect(statuses[200]).toBeGreaterThan(100);
    expect(statuses[500]).toBeGreaterThan(100);
    console.log("mm7 inbound mutation answers by HTTP status:", JSON.stringify(statuses));
  });
});

describe("the stub MMSC's own requests are schema-valid", () => {
  test("DeliveryReportReq (every MMStatus) and DeliverReq", async () => {
    const docs = ["Retrieved", "Forwarded", "Deferred", "Indeterminate", "Expired", "Rejected", "Unrecognised"].map((status) => ({
      name: status,
      xml: extractChild(buildDeliveryReportReq({ messageId: "M", status, statusText: "x" }), "Body"),
    }));
    const mo = new TextDecoder().decode(buildDeliverReqMessage({ from: "12025550123", to: "12345", subject: "s", text: "t", linkedId: "L" }).body);
    const soap = mo.slice(mo.indexOf("<?xml"), mo.indexOf("</soap-env:Envelope>") + "</soap-env:Envelope>".length);
    docs.push({ name: "DeliverReq", xml: extractChild(soap, "Body") });
    const checked = await validateMm7(docs, nsOf("REL-6-MM7-1-4"));
    for (const c of checked) expect({ name: c.name, errors: c.errors, valid: c.valid }).toEqual({ name: c.name, errors: [], valid: true });
  });
});
