// The SubmitReq we build: strictly schema-valid in every namespace preset and XML style, elements in
// schema order, and a MIME body an MMSC can take apart (checked by the stub MMSC's strict reader).
import { describe, expect, test } from "bun:test";
import { failedBeforeSending } from "../../adapters/mm7/client.ts";
import { buildSubmitReq } from "../../adapters/mm7/envelope.ts";
import { PartCache } from "../../adapters/mm7/part-cache.ts";
import { mm7Presets, namespaceUri, optionalSubmitElements, type Mm7Settings } from "../../adapters/mm7/settings.ts";
import { buildSubmitMessage } from "../../adapters/mm7/submit-message.ts";
import { parseSubmitRequest } from "../peers/mm7-stub.ts";
import { randomBytes, sampleSubmit, settings } from "../support/mm7.ts";
import { extractChild, validateMm7, validateSoapEnvelope } from "../support/mm7-xsd.ts";

const schemaOrder = [
  "MM7Version", "SenderIdentification", "Recipients", "ServiceCode", "LinkedID", "MessageClass", "TimeStamp", "ReplyCharging",
  "EarliestDeliveryTime", "ExpiryDate", "DeliveryReport", "ReadReply", "Priority", "Subject", "ChargedParty", "ChargedPartyID",
  "DistributionIndicator", "DeliveryCondition", "ApplicID", "ReplyApplicID", "AuxApplicInfo", "ContentClass", "DRMContent", "Content",
];

const allElements: Partial<Mm7Settings> = {
  submit_elements: [...optionalSubmitElements],
  expiry_seconds: 259200,
  earliest_delivery_seconds: 60,
  charged_party: "Sender",
  charged_party_id: "12345",
  delivery_condition: [1, 2],
  applic_id: "app",
  reply_applic_id: "reply-app",
  aux_applic_info: "aux",
  content_class: "image-rich",
  drm_content: false,
  read_reply: true,
};

const variants: { name: string; over: Partial<Mm7Settings>; from?: string; to?: string }[] = [
  { name: "defaults", over: {} },
  { name: "all optional elements", over: allElements },
  { name: "no optional elements", over: { submit_elements: [] } },
  { name: "number sender, strip plus", over: { sender_address_type: "auto", strip_plus: true }, from: "+18885551234", to: "+12025550123" },
  { name: "e-mail sender", over: { sender_address_type: "rfc2822" }, from: "news@example.com" },
  { name: "no sender address, no VASID", over: { sender_address_type: "none", vaspid: "", vasid: "" } },
];

const now = Date.UTC(2025, 0, 2, 3, 4, 5);
const cases = Object.values(mm7Presets).flatMap((preset) =>
  (["default-namespace", "prefix"] as const).flatMap((style) =>
    variants.map((v) => {
      const s = settings({ ...preset, xml_style: style, ...v.over });
      const m = sampleSubmit({ ...(v.from ? { from: v.from } : {}), ...(v.to ? { to: v.to } : {}) });
      const xml = buildSubmitReq(s, namespaceUri(s), { transactionId: m.messageId, from: m.from, to: m.to, subject: m.subject, contentId: "mm7-content", now });
      return { name: `${preset.namespace}/${preset.version} ${style} ${v.name}`, s, xml };
    }),
  ),
);

describe("SubmitReq against the derived XSD (strict, Body child cut out)", () => {
  test(`all ${cases.length} SubmitReqs validate, in their own namespace`, async () => {
    for (const preset of Object.values(mm7Presets)) {
      const mine = cases.filter((c) => c.s.namespace === preset.namespace);
      const checked = await validateMm7(mine.map((c) => ({ name: c.name, xml: extractChild(c.xml, "Body") })), namespaceUri(preset));
      for (const c of checked) expect({ name: c.name, errors: c.errors, valid: c.valid }).toEqual({ name: c.name, errors: [], valid: true });
    }
  });

  test("the TransactionID header entry validates and is mustUnderstand", async () => {
    for (const preset of Object.values(mm7Presets)) {
      const mine = cases.filter((c) => c.s.namespace === preset.namespace);
      const checked = await validateMm7(mine.map((c) => ({ name: c.name, xml: extractChild(c.xml, "Header") })), namespaceUri(preset));
      for (const c of checked) expect({ name: c.name, errors: c.errors }).toEqual({ name: c.name, errors: [] });
      for (const c of mine) expect(c.xml).toMatch(/TransactionID xmlns(:mm7)?="[^"]+" env:mustUnderstand="1">msg_01</);
    }
  });

  test("every envelope validates against the SOAP 1.1 envelope schema", async () => {
    const checked = await validateSoapEnvelope(cases.map((c) => ({ name: c.name, xml: c.xml })));
    for (const c of checked) expect({ name: c.name, errors: c.errors, valid: c.valid }).toEqual({ name: c.name, errors: [], valid: true });
  });

  test("a wrong namespace is caught (the strict check is not vacuous)", async () => {
    const c = cases[0]!;
    const [checked] = await validateMm7([{ name: "wrong ns", xml: extractChild(c.xml, "Body") }], namespaceUri({ namespace: "REL-5-MM7-1-3" }));
    expect(checked!.valid).toBe(false);
    const [bad] = await validateMm7([{ name: "True", xml: extractChild(c.xml, "Body").replace(">true<", ">True<") }], namespaceUri(c.s));
    expect(bad!.valid).toBe(false);
  });
});

describe("SubmitReq content", () => {
  test("elements appear in schema order, booleans lowercase, DeliveryReport requested", () => {
    for (const c of cases) {
      const names = [...extractChild(c.xml, "Body").matchAll(/<(?:mm7:)?([A-Za-z0-9]+)[\s/>]/g)].map((m) => m[1]!);
      const top = names.filter((n) => schemaOrder.includes(n) && n !== "SubmitReq");
      const positions = top.map((n) => schemaOrder.indexOf(n));
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
      expect(c.xml).not.toMatch(/>(True|False|TRUE|FALSE)</);
      if (c.s.submit_elements.includes("DeliveryReport")) expect(c.xml).toMatch(/DeliveryReport>true</);
    }
  });

  test("all optional elements, when opted in, come out in exactly schema order", () => {
    const c = cases.find((x) => x.name.endsWith("all optional elements"))!;
    const parsed = parseSubmitRequest(...wrap(c.xml));
    expect(parsed.elementOrder).toEqual(schemaOrder.filter((n) => !["LinkedID", "ReplyCharging"].includes(n)));
  });

  test("values are escaped and survive a round trip", async () => {
    const c = cases[0]!;
    const parsed = parseSubmitRequest(...wrap(c.xml));
    expect(parsed.subject).toBe(sampleSubmit().subject);
    expect(parsed.sender).toEqual({ kind: "ShortCode", value: "12345" });
    expect(parsed.to).toEqual([{ kind: "Number", value: "12025550123" }]);
    expect(parsed.allowAdaptations).toBe("true");
    const plus = cases.find((x) => x.name.endsWith("strip plus"))!;
    const p2 = parseSubmitRequest(...wrap(plus.xml));
    expect(p2.sender).toEqual({ kind: "Number", value: "18885551234" });
    expect(p2.to).toEqual([{ kind: "Number", value: "12025550123" }]);
  });
});

/** Puts a bare SOAP string into a minimal valid MIME body so the stub's strict reader can parse it. */
function wrap(soap: string): [string, Uint8Array] {
  const body =
    `--b\r\nContent-Type: text/xml\r\nContent-ID: <s>\r\n\r\n${soap}\r\n` +
    `--b\r\nContent-Type: multipart/related; boundary="i"; type="application/smil"; start="<m>"\r\nContent-ID: <mm7-content>\r\n\r\n` +
    `--i\r\nContent-Type: application/smil\r\nContent-ID: <m>\r\nContent-Location: m\r\n\r\n<smil/>\r\n--i--\r\n` +
    `\r\n--b--\r\n`;
  return [`multipart/related; boundary="b"; type="text/xml"; start="<s>"`, new TextEncoder().encode(body)];
}

describe("the MIME body", () => {
  test("SOAP part first, nested multipart/related with SMIL start, every part with Content-ID and Content-Location", async () => {
    const s = settings();
    const images = [
      { contentType: "image/jpeg", bytes: randomBytes(100_000, 3), cacheKey: "a", filename: "promo.jpg" },
      { contentType: "image/gif", bytes: randomBytes(777, 4), cacheKey: "b", filename: "promo.jpg" },
      { contentType: "video/mp4", bytes: randomBytes(1234, 5), cacheKey: "c", filename: "../../etc/passwd clip" },
    ];
    const m = sampleSubmit({ media: images });
    const msg = buildSubmitMessage(s, namespaceUri(s), m, now, new PartCache(1 << 20));
    const parsed = parseSubmitRequest(msg.contentType, await msg.body.bytes());
    expect(parsed.media.map((p) => p.contentType)).toEqual(["image/jpeg", "image/gif", "video/mp4"]);
    parsed.media.forEach((p, i) => {
      expect(Buffer.from(p.bytes).equals(Buffer.from(images[i]!.bytes))).toBe(true);
      expect(p.transferEncoding).toBe("base64");
      expect(p.contentId).toBe(`<${p.contentLocation}>`);
    });
    expect(new Set(parsed.parts.map((p) => p.contentLocation)).size).toBe(parsed.parts.length);
    expect(parsed.media[2]!.contentLocation).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(parsed.text).toBe(m.text);
    expect(parsed.parts.find((p) => p.contentType.startsWith("text/plain"))!.contentType).toBe('text/plain; charset="utf-8"');
    // SMIL: one slide per media item, text on the first.
    const slides = parsed.smil.match(/<par /g)!;
    expect(slides.length).toBe(3);
    expect(parsed.smil).toMatch(/<par dur="5000ms"><img src="cid:promo.jpg" region="Image"\/><text src="cid:text.txt" region="Text"\/><\/par>/);
    for (const p of parsed.parts.slice(1)) expect(parsed.smil).toContain(`cid:${p.contentLocation}`);
    expect(msg.body.size).toBeGreaterThan(msg.contentBytes);
  });

  test("the body is a Blob, which fetch sends as it is (a Uint8Array body it copies first: issue #17), its size the Content-Length", async () => {
    const s = settings();
    const m = sampleSubmit({ media: [{ contentType: "image/jpeg", bytes: randomBytes(50_000, 9), cacheKey: "k", filename: "a.jpg" }] });
    const msg = buildSubmitMessage(s, namespaceUri(s), m, now, new PartCache(1 << 20));
    expect(msg.body).toBeInstanceOf(Blob);
    const bytes = await msg.body.bytes();
    expect(bytes.byteLength).toBe(msg.body.size);
    expect(Buffer.from(parseSubmitRequest(msg.contentType, bytes).media[0]!.bytes).equals(Buffer.from(m.media[0]!.bytes))).toBe(true);
  });

  test("text-only and media-only messages", async () => {
    const s = settings();
    const textOnly = buildSubmitMessage(s, namespaceUri(s), sampleSubmit({ media: [] }), now, new PartCache(1 << 20));
    const p1 = parseSubmitRequest(textOnly.contentType, await textOnly.body.bytes());
    expect(p1.media).toEqual([]);
    expect(p1.smil).toContain('<text src="cid:text.txt" region="Text"/>');
    const mediaOnly = buildSubmitMessage(s, namespaceUri(s), sampleSubmit({ text: "" }), now, new PartCache(1 << 20));
    const p2 = parseSubmitRequest(mediaOnly.contentType, await mediaOnly.body.bytes());
    expect(p2.text).toBeUndefined();
    expect(p2.media.length).toBe(1);
  });

  test("the encoded part is cached by cacheKey and reused", async () => {
    const s = settings();
    const cache = new PartCache(1 << 20);
    const m = sampleSubmit();
    buildSubmitMessage(s, namespaceUri(s), m, now, cache);
    expect(cache.size.entries).toBe(1);
    // Same cacheKey, different bytes: the cached encoding wins (the key promises same bytes).
    const again = buildSubmitMessage(s, namespaceUri(s), { ...m, media: [{ ...m.media[0]!, bytes: new Uint8Array(5000) }] }, now, cache);
    const parsed = parseSubmitRequest(again.contentType, await again.body.bytes());
    expect(Buffer.from(parsed.media[0]!.bytes).equals(Buffer.from(m.media[0]!.bytes))).toBe(true);
  });

  test("the cache is bounded in bytes, least recently used out first", () => {
    const cache = new PartCache(1000);
    const enc = (n: number) => () => new Uint8Array(n);
    cache.get("a", enc(400));
    cache.get("b", enc(400));
    cache.get("a", enc(400));
    cache.get("c", enc(400));
    expect(cache.size).toEqual({ entries: 2, bytes: 800 });
    let encoded = false;
    cache.get("b", () => ((encoded = true), new Uint8Array(400)));
    expect(encoded).toBe(true);
  });

  test("a subject or text containing the boundary prefix cannot break the framing", async () => {
    const s = settings();
    const m = sampleSubmit({ text: "--=_mm7_ tricky\r\n--=_mm7_00000000000000000000000000000000--\r\n", subject: "=_mm7_" });
    const msg = buildSubmitMessage(s, namespaceUri(s), m, now, new PartCache(1 << 20));
    expect(parseSubmitRequest(msg.contentType, await msg.body.bytes()).text).toBe(m.text);
  });
});

describe("which transport errors leave no doubt (issue 11 item 9)", () => {
  const err = (code: string) => Object.assign(new TypeError(code), { code });
  test.each(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ERR_INVALID_URL", "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_HAS_EXPIRED", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"])("%s: before sending", (code) => {
    expect(failedBeforeSending(err(code))).toBe(true);
  });
  test.each(["ECONNRESET", "EPIPE", "ETIMEDOUT", "UNKNOWN_SOMETHING"])("%s: the request may have left", (code) => {
    expect(failedBeforeSending(err(code))).toBe(false);
  });
  test("EPROTO: only a failed handshake is before sending", () => {
    expect(failedBeforeSending(Object.assign(new TypeError("EPROTO: The TLS handshake failed."), { code: "EPROTO" }))).toBe(true);
    expect(failedBeforeSending(Object.assign(new TypeError("EPROTO: bad record mac"), { code: "EPROTO" }))).toBe(false);
  });
  test("an error without a code may have come after sending", () => {
    expect(failedBeforeSending(new Error("socket hang up"))).toBe(false);
  });
});
