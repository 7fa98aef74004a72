// Builds the SOAP envelopes we send: the SubmitReq, and our answers to what the MMSC posts to us. Plain
// string templates (every value escaped) keep element order explicit and cost a few microseconds.
import { escapeXml } from "./xml.ts";
import type { Mm7Settings } from "./settings.ts";

export const soapNs = "http://schemas.xmlsoap.org/soap/envelope/";

/** Writes element names in the configured style: default namespace on the top element, or the mm7: prefix. */
interface Style {
  /** Opening tag of the top element of the block, carrying the namespace declaration. */
  top(local: string, ns: string, attrs?: string): string;
  /** Any other element name. */
  name(local: string): string;
}

function xmlStyle(style: Mm7Settings["xml_style"]): Style {
  if (style === "prefix") {
    return { top: (l, ns, a = "") => `<mm7:${l} xmlns:mm7="${escapeXml(ns)}"${a}>`, name: (l) => `mm7:${l}` };
  }
  return { top: (l, ns, a = "") => `<${l} xmlns="${escapeXml(ns)}"${a}>`, name: (l) => l };
}

function envelope(header: string, body: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<env:Envelope xmlns:env="${soapNs}">` +
    (header ? `<env:Header>${header}</env:Header>` : "") +
    `<env:Body>${body}</env:Body></env:Envelope>`
  );
}

/** The only header entry MM7 knows; the peer must understand it (research §1.2). */
function transactionHeader(st: Style, ns: string, transactionId: string | undefined): string {
  if (transactionId === undefined) return "";
  return st.top("TransactionID", ns, ` env:mustUnderstand="1"`) + escapeXml(transactionId) + `</${st.name("TransactionID")}>`;
}

export type AddressKind = "Number" | "ShortCode" | "RFC2822Address";

/** Mbuni's heuristic for "auto": an e-mail address, else ≤ 6 digits is a short code, else a number. */
export function addressKind(address: string, configured: Mm7Settings["sender_address_type"]): AddressKind {
  switch (configured) {
    case "number":
      return "Number";
    case "shortcode":
      return "ShortCode";
    case "rfc2822":
      return "RFC2822Address";
    default:
      if (address.includes("@")) return "RFC2822Address";
      return /^\+?\d{1,6}$/.test(address) ? "ShortCode" : "Number";
  }
}

export interface SubmitFields {
  transactionId: string;
  from: string;
  to: string;
  subject: string;
  /** The outer MIME part's Content-ID, without angle brackets. */
  contentId: string;
  /** Unix ms, for TimeStamp / ExpiryDate / EarliestDeliveryTime. */
  now: number;
}

/** The SubmitReq envelope, every element strictly in schema order (research §3.1). */
export function buildSubmitReq(s: Mm7Settings, ns: string, f: SubmitFields): string {
  const st = xmlStyle(s.xml_style);
  const want = new Set<string>(s.submit_elements);
  const el = (local: string, value: string) => `<${st.name(local)}>${escapeXml(value)}</${st.name(local)}>`;
  const opt = (local: string, value: string | boolean) =>
    want.has(local) && value !== "" ? el(local, typeof value === "boolean" ? String(value) : value) : "";
  const number = (v: string) => (s.strip_plus && v.startsWith("+") ? v.slice(1) : v);
  const address = (kind: AddressKind, v: string) => el(kind, kind === "Number" ? number(v) : v);
  const time = (offsetSeconds: number) => new Date(f.now + offsetSeconds * 1000).toISOString();

  let x = st.top("SubmitReq", ns);
  x += el("MM7Version", s.version);
  x += `<${st.name("SenderIdentification")}>`;
  if (s.vaspid) x += el("VASPID", s.vaspid);
  if (s.vasid) x += el("VASID", s.vasid);
  if (s.sender_address_type !== "none" && f.from) {
    x += `<${st.name("SenderAddress")}>${address(addressKind(f.from, s.sender_address_type), f.from)}</${st.name("SenderAddress")}>`;
  }
  x += `</${st.name("SenderIdentification")}>`;
  // One recipient per request: multi-recipient submits are often refused (Skycore 2503, MM7 3003).
  const toKind: AddressKind = f.to.includes("@") ? "RFC2822Address" : "Number";
  x += `<${st.name("Recipients")}><${st.name("To")}>${address(toKind, f.to)}</${st.name("To")}></${st.name("Recipients")}>`;
  x += opt("ServiceCode", s.service_code);
  x += opt("MessageClass", s.message_class);
  x += opt("TimeStamp", time(0));
  if (want.has("EarliestDeliveryTime") && s.earliest_delivery_seconds > 0) x += el("EarliestDeliveryTime", time(s.earliest_delivery_seconds));
  if (want.has("ExpiryDate") && s.expiry_seconds > 0) x += el("ExpiryDate", time(s.expiry_seconds));
  x += opt("DeliveryReport", true);
  x += opt("ReadReply", s.read_reply);
  x += opt("Priority", s.priority);
  x += opt("Subject", f.subject);
  x += opt("ChargedParty", s.charged_party);
  x += opt("ChargedPartyID", s.charged_party_id);
  x += opt("DistributionIndicator", s.distribution_indicator);
  if (want.has("DeliveryCondition") && s.delivery_condition.length > 0) {
    x += `<${st.name("DeliveryCondition")}>${s.delivery_condition.map((dc) => el("DC", String(dc))).join("")}</${st.name("DeliveryCondition")}>`;
  }
  x += opt("ApplicID", s.applic_id);
  x += opt("ReplyApplicID", s.reply_applic_id);
  x += opt("AuxApplicInfo", s.aux_applic_info);
  x += opt("ContentClass", s.content_class);
  x += opt("DRMContent", s.drm_content);
  const adapt = want.has("allowAdaptations") ? ` allowAdaptations="${s.allow_adaptations}"` : "";
  x += `<${st.name("Content")} href="cid:${escapeXml(f.contentId)}"${adapt}/>`;
  x += `</${st.name("SubmitReq")}>`;
  return envelope(transactionHeader(st, ns, f.transactionId), x);
}

export interface AnswerFields {
  ns: string;
  version: string;
  transactionId: string | undefined;
  code: number;
  text: string;
}

/** DeliveryReportRsp / DeliverRsp / ReadReplyRsp: `MM7Version, Status` in the request's namespace. */
export function buildAnswer(style: Mm7Settings["xml_style"], kind: "DeliveryReportRsp" | "DeliverRsp" | "ReadReplyRsp", a: AnswerFields): string {
  const st = xmlStyle(style);
  return envelope(transactionHeader(st, a.ns, a.transactionId), st.top(kind, a.ns) + versionAndStatus(st, a) + `</${st.name(kind)}>`);
}

/** A SOAP Fault carrying VASPErrorRsp, for requests we cannot process (research §3.8). */
export function buildErrorFault(style: Mm7Settings["xml_style"], a: AnswerFields, faultcode: "Client" | "Server"): string {
  const st = xmlStyle(style);
  const detail = st.top("VASPErrorRsp", a.ns) + versionAndStatus(st, a) + `</${st.name("VASPErrorRsp")}>`;
  const fault =
    `<env:Fault><faultcode>env:${faultcode}</faultcode><faultstring>${escapeXml(a.text)}</faultstring>` +
    `<detail>${detail}</detail></env:Fault>`;
  return envelope(transactionHeader(st, a.ns, a.transactionId), fault);
}

function versionAndStatus(st: Style, a: AnswerFields): string {
  const n = st.name;
  return (
    `<${n("MM7Version")}>${escapeXml(a.version)}</${n("MM7Version")}>` +
    `<${n("Status")}><${n("StatusCode")}>${a.code}</${n("StatusCode")}><${n("StatusText")}>${escapeXml(a.text)}</${n("StatusText")}></${n("Status")}>`
  );
}

/** CancelReq (research §3.7): `mm7 probe` asks to cancel a message that cannot exist, to test the credentials. */
export function buildCancelReq(s: Mm7Settings, ns: string, transactionId: string, messageId: string): string {
  const st = xmlStyle(s.xml_style);
  const el = (local: string, value: string) => `<${st.name(local)}>${escapeXml(value)}</${st.name(local)}>`;
  let x = st.top("CancelReq", ns) + el("MM7Version", s.version);
  x += `<${st.name("SenderIdentification")}>${s.vaspid ? el("VASPID", s.vaspid) : ""}${s.vasid ? el("VASID", s.vasid) : ""}</${st.name("SenderIdentification")}>`;
  x += el("MessageID", messageId) + `</${st.name("CancelReq")}>`;
  return envelope(transactionHeader(st, ns, transactionId), x);
}
