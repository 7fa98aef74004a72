// Everything an MMSC could send us, from the real-world samples: read to the right fields, leniently.
import { describe, expect, test } from "bun:test";
import { readDeliverReq, readDeliveryReport, readEnvelope, readFault, readStatus } from "../../adapters/mm7/envelope-read.ts";
import { decodeTransfer, parseHeaderValue } from "../../adapters/mm7/mime.ts";
import { readPayload } from "../../adapters/mm7/payload.ts";
import { XmlRefused, parseXml } from "../../adapters/mm7/xml.ts";
import { fixtureBytes } from "../support/mm7.ts";

const rel6 = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4";
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Splits a raw HTTP dump into its Content-Type header and body. */
async function httpDump(name: string): Promise<{ contentType: string; body: Uint8Array }> {
  const raw = text(await fixtureBytes(name));
  const split = raw.indexOf("\n\n");
  const head = raw.slice(0, split);
  return { contentType: /^content-type:\s*(.*)$/im.exec(head)![1]!, body: new TextEncoder().encode(raw.slice(split + 2)) };
}

/** A .mime fixture is a multipart body whose boundary is its first delimiter line. */
async function mimeBody(name: string): Promise<{ contentType: string; body: Uint8Array }> {
  const body = await fixtureBytes(name);
  const first = text(body.subarray(0, 400)).split(/\r?\n/).find((l) => l.startsWith("--"))!;
  return { contentType: `multipart/related; boundary="${first.slice(2).trimEnd()}"`, body };
}

describe("delivery reports", () => {
  test("Skycore DeliveryReportReq (default namespace on the Envelope)", async () => {
    const env = readEnvelope(readPayload("text/xml", await fixtureBytes("skycore_deliveryreportreq.xml")).soap);
    expect(env.transactionId).toBe("10000001");
    expect(env.ns).toBe(rel6);
    expect(env.body!.local).toBe("DeliveryReportReq");
    expect(readDeliveryReport(env.body!)).toEqual({
      messageId: "369500617770864640",
      recipient: "16175550123",
      sender: "111122",
      date: "2015-03-16T14:03:51.749Z",
      mmStatus: "Retrieved",
      statusText: "Success",
      version: "6.8.0",
    });
  });

  test("Skycore's 'multipart/related' header on a bare XML body", async () => {
    const p = readPayload('multipart/related; type="text/xml";', await fixtureBytes("skycore_deliveryreportreq.xml"));
    expect(readEnvelope(p.soap).body!.local).toBe("DeliveryReportReq");
  });

  test("VectorCore style: mm7: prefix on the request, unqualified children, no Sender/Date, /TYPE=PLMN, odd case", () => {
    const doc = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:mm7="http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-0"><soapenv:Header><mm7:TransactionID soapenv:mustUnderstand="1">  t-9 \n</mm7:TransactionID></soapenv:Header><soapenv:Body><mm7:DeliveryReportReq><MM7Version>5.3.0</MM7Version><MessageID> mid-1 </MessageID><Recipient><Number>+385 91 000/TYPE=PLMN</Number></Recipient><MMStatus>unrecognized</MMStatus></mm7:DeliveryReportReq></soapenv:Body></soapenv:Envelope>`;
    const env = readEnvelope(doc);
    expect(env.transactionId).toBe("t-9");
    expect(env.ns).toContain("REL-5-MM7-1-0");
    expect(readDeliveryReport(env.body!)).toMatchObject({ messageId: "mid-1", recipient: "+38591000", mmStatus: "unrecognized", sender: undefined, date: undefined });
  });
});

describe("MO DeliverReq variants", () => {
  test("Nokia MC5.0, REL-6-MM7-1-4, odd prefix, /TYPE=PLMN, BASE64 SMIL + GIF", async () => {
    const { contentType, body } = await mimeBody("instantcom_deliver-req3_nokia-mc5_REL-6-MM7-1-4.mime");
    const p = readPayload(contentType, body);
    const env = readEnvelope(p.soap);
    expect(env.transactionId).toBe("4E073C7AQ479306TW26785I371H3M1HA");
    expect(env.ns).toBe(rel6);
    const mo = readDeliverReq(env.body!);
    expect(mo).toMatchObject({ linkedId: "0402105226100000000000000", sender: "+3859100010010", recipients: ["88888"], subject: "Bomb", contentHref: "cid:57626X20-1VO9-A93941F7", version: "6.8.0" });
    const types = p.attachments.map((a) => parseHeaderValue(a.headers.get("content-type")).value);
    expect(types).toEqual(["application/smil", "image/gif"]);
    const gif = decodeTransfer(p.attachments[1]!);
    expect(text(gif.subarray(0, 6))).toBe("GIF89a");
  });

  test("Nokia REL-5-MM7-1-0 (China): bare-text Sender and SenderAddress, To/Cc/Bcc", async () => {
    const { contentType, body } = await mimeBody("instantcom_deliver-req6-hw_nokia_REL-5-MM7-1-0.mime");
    const env = readEnvelope(readPayload(contentType, body).soap);
    expect(env.ns).toContain("REL-5-MM7-1-0");
    const mo = readDeliverReq(env.body!);
    expect(mo.sender).toBe("13951900000");
    expect(mo.recipients).toEqual(["13900000001", "13900000003", "13900000002"]);
    expect(mo.linkedId).toBe("9999");
  });

  test("23.140 spec example with multipart/mixed content and trailing blanks after boundaries", async () => {
    const { contentType, body } = await mimeBody("instantcom_deliver-req2_spec-example_multipart-mixed.mime");
    const p = readPayload(contentType, body);
    const env = readEnvelope(p.soap);
    expect(env.transactionId).toBe("vas00324-dlvr");
    expect(readDeliverReq(env.body!)).toMatchObject({ sender: "97254265781@OMMS.com", subject: "Weather Forecast", linkedId: "wthr8391" });
    expect(p.attachments.map((a) => parseHeaderValue(a.headers.get("content-type")).value)).toEqual(["text/plain", "image/gif"]);
    expect(text(decodeTransfer(p.attachments[0]!))).toContain("Science news");
  });

  test("full HTTP POST with start= naming the SOAP part", async () => {
    const { contentType, body } = await httpDump("instantcom_deliver-req-post_http.txt");
    const p = readPayload(contentType, body);
    expect(readEnvelope(p.soap).body!.local).toBe("DeliverReq");
    expect(text(decodeTransfer(p.attachments[0]!)).trim()).toBe("Los Angeles, Calif, USA");
  });

  test("GB2312: the declared charset is honoured for SOAP and text parts", async () => {
    const { contentType, body } = await mimeBody("gb2312_deliver-req_REL-6-MM7-1-0.mime");
    const p = readPayload(contentType, body);
    const env = readEnvelope(p.soap);
    expect(readDeliverReq(env.body!).subject).toBe("彩信主题");
    expect(readDeliverReq(env.body!).sender).toBe("8613111111111");
    const part = p.attachments[0]!;
    expect(new TextDecoder("gbk").decode(decodeTransfer(part)).trim()).toBe("你好，世界");
  });

  test("GB2312 XML without a MIME charset: the XML declaration decides", async () => {
    const { body } = await mimeBody("gb2312_deliver-req_REL-6-MM7-1-0.mime");
    const raw = Buffer.from(body);
    const start = raw.indexOf("<?xml");
    const end = raw.indexOf("</env:Envelope>") + "</env:Envelope>".length;
    const env = readEnvelope(readPayload("text/xml", raw.subarray(start, end)).soap);
    expect(readDeliverReq(env.body!).subject).toBe("彩信主题");
  });

  test("China Unicom SubmitReq capture (GB2312 declaration, bare SenderAddress) reads", async () => {
    const { contentType, body } = await mimeBody("china-unicom-mmsmp_submitreq_REL-6-MM7-1-0_GB2312.txt");
    const env = readEnvelope(readPayload(contentType, body).soap);
    expect(env.transactionId).toBe("1234567890");
    expect(env.body!.local).toBe("SubmitReq");
  });
});

describe("answers to our SubmitReq", () => {
  test("Skycore SubmitRsp success", async () => {
    const env = readEnvelope(readPayload("application/xml; charset=utf-8", await fixtureBytes("skycore_submitrsp_success.xml")).soap);
    expect(readStatus(env.body)).toEqual({ code: 1000, text: "Successfully parsed and validated request" });
  });

  test("instantcom SubmitRsp (non-3GPP namespace, whitespace around the TransactionID)", async () => {
    const env = readEnvelope(text(await fixtureBytes("instantcom_submit-rsp.xml")));
    expect(env.transactionId).toBe("vas00001-sub");
    expect(readStatus(env.body).code).toBe(1000);
    expect(env.body!.children.find((c) => c.local === "MessageID")!.text).toBe("041502073667");
  });

  test("SOAP Fault with RSErrorRsp 4002 in detail", async () => {
    const env = readEnvelope(text(await fixtureBytes("instantcom_fault_RSErrorRsp_4002.xml")));
    expect(readFault(env.body!)).toMatchObject({ code: 4002, text: "Unsupported version", faultcode: "Client", detailKind: "RSErrorRsp" });
  });

  test("Skycore's not-well-formed fault 2007 is still read", async () => {
    const env = readEnvelope(text(await fixtureBytes("skycore_rserrorrsp_fault_2007.xml")));
    expect(readFault(env.body!).code).toBe(2007);
  });

  test("qualified env:faultcode/env:detail (IC-PR#11) and a numeric faultstring without detail", () => {
    const q = `<e:Envelope xmlns:e="${"http://schemas.xmlsoap.org/soap/envelope/"}"><e:Body><e:Fault><e:faultcode>e:Server</e:faultcode><e:faultstring>x</e:faultstring><e:detail><RSErrorRsp><MM7Version>6.8.0</MM7Version><Status><StatusCode>4006</StatusCode></Status></RSErrorRsp></e:detail></e:Fault></e:Body></e:Envelope>`;
    expect(readFault(readEnvelope(q).body!).code).toBe(4006);
    const n = `<Envelope><Body><Fault><faultcode>Server</faultcode><faultstring>3000 Server Error</faultstring></Fault></Body></Envelope>`;
    expect(readFault(readEnvelope(n).body!)).toMatchObject({ code: 3000, faultstring: "3000 Server Error" });
  });

  test("VectorCore Rsp fixtures read with their MessageID", async () => {
    for (const f of ["vectorcore_deliver_rsp.soap", "vectorcore_delivery_report_rsp.soap", "vectorcore_read_reply_rsp.soap"]) {
      const env = readEnvelope(text(await fixtureBytes(f)));
      expect(readStatus(env.body).code).toBe(1000);
      expect(env.ns).toContain("REL-5-MM7-1-0");
    }
  });

  test("sample SubmitReqs from other VASPs read (Celcom header/body namespace mismatch, VectorCore, instantcom)", async () => {
    const celcom = readEnvelope(text(await fixtureBytes("celcom-inmobia_submitreq_REL-5-MM7-1-2-header_1-3-body.xml")));
    expect(celcom.ns).toContain("REL-5-MM7-1-3");
    expect(celcom.transactionId).toBe("11278134");
    const vc = await fixtureBytes("vectorcore_submit_req.multipart");
    expect(readEnvelope(readPayload('multipart/related; boundary="soap-boundary"', vc).soap).body!.local).toBe("SubmitReq");
    const ic = await fixtureBytes("instantcom-generated_submitreq_REL-6-MM7-1-4.mime");
    const icText = text(ic);
    const ct = /^Content-Type: (.*)$/m.exec(icText)![1]!;
    const p = readPayload(ct, ic.subarray(icText.indexOf("\n") + 1));
    expect(readEnvelope(p.soap).transactionId).toBe("tx-1");
    expect(text(decodeTransfer(p.attachments[0]!))).toBe("hello");
  });
});

describe("hostile XML is refused before any entity is expanded", () => {
  const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><lolz>&lol9;</lolz>`;
  const xxe = `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`;
  test.each([["billion laughs", bomb], ["external entity", xxe], ["lower-case doctype", "<!doctype x><x/>"]])("%s", (_, doc) => {
    const t = performance.now();
    expect(() => parseXml(doc)).toThrow(XmlRefused);
    expect(performance.now() - t).toBeLessThan(50);
  });

  test("undeclared entities stay literal, predefined and numeric ones decode", () => {
    const el = parseXml("<a>&amp;&lt;&#65;&#x42;&nope;</a>");
    expect(el.text).toBe("&<AB&nope;");
  });

  test("absurd nesting is refused, not a stack overflow", () => {
    expect(() => parseXml("<a>".repeat(5000) + "</a>".repeat(5000))).toThrow(XmlRefused);
  });
});

describe("MIME reading details", () => {
  test("a boundary that is a prefix of another does not split the outer body", async () => {
    const { splitMultipart } = await import("../../adapters/mm7/mime.ts");
    const body = new TextEncoder().encode("--b\r\nContent-Type: multipart/mixed; boundary=bb\r\n\r\n--bb\r\n\r\ninner\r\n--bb--\r\n--b\r\n\r\nsecond\r\n--b--\r\n");
    const parts = splitMultipart(body, "b");
    expect(parts.length).toBe(2);
    expect(new TextDecoder().decode(parts[1]!.body)).toBe("second");
  });

  test("header names and parameter names in any case, quoted values with semicolons", () => {
    const v = parseHeaderValue('Multipart/Related; Type="application/smil"; START="<a;b>"; boundary=xyz');
    expect(v).toEqual({ value: "multipart/related", params: { type: "application/smil", start: "<a;b>", boundary: "xyz" } });
  });
});

describe("transfer encodings", () => {
  test("quoted-printable and BASE64 (any case) decode; unknown encodings pass through", async () => {
    const { decodeTransfer } = await import("../../adapters/mm7/mime.ts");
    const part = (cte: string, body: string) => ({ headers: new Map([["content-transfer-encoding", cte]]), body: new TextEncoder().encode(body) });
    expect(new TextDecoder().decode(decodeTransfer(part("Quoted-Printable", "caf=C3=A9 =\r\nok")))).toBe("café ok");
    expect(new TextDecoder().decode(decodeTransfer(part("BASE64", "aGVs\r\nbG8=")))).toBe("hello");
    expect(new TextDecoder().decode(decodeTransfer(part("x-unknown", "raw")))).toBe("raw");
  });
});
