// Lenient reading of MM7 SOAP messages: any namespace (REL-5, REL-6, none), any prefix, local names only,
// values trimmed, addresses as typed children or bare text. Never validates (research §6: be liberal).
import { attr, child, childText, parseXml, type XmlElement } from "./xml.ts";

export interface Mm7Envelope {
  transactionId?: string;
  /** The first element inside Body (a request, a response, or a Fault). */
  body?: XmlElement;
  /** MM7 namespace of the body element, else of TransactionID; "" when there is none. */
  ns: string;
}

/** Throws XmlRefused for DOCTYPEs and unusable XML. A document without an Envelope is read as a bare body. */
export function readEnvelope(doc: string): Mm7Envelope {
  const root = parseXml(doc);
  if (root.local !== "Envelope") return { body: root, ns: root.ns };
  const header = child(root, "Header");
  const tx = child(header, "TransactionID");
  const body = child(root, "Body")?.children[0];
  const ns = (body && body.local !== "Fault" ? body.ns : "") || tx?.ns || faultDetail(body)?.ns || "";
  return { transactionId: tx?.text.trim() || undefined, body, ns };
}

export interface Mm7Status {
  code?: number;
  text?: string;
}

export function readStatus(el: XmlElement | undefined): Mm7Status {
  const status = child(el, "Status");
  const code = parseCode(childText(status, "StatusCode"));
  return { code, text: childText(status, "StatusText") || childText(status, "Details") };
}

export interface Mm7Fault extends Mm7Status {
  faultcode?: string;
  faultstring?: string;
  /** Local name of the detail element, e.g. RSErrorRsp. */
  detailKind?: string;
}

/** A SOAP Fault: the code from detail/*\/Status, else a numeric faultstring (Mbuni's fallback). */
export function readFault(fault: XmlElement): Mm7Fault {
  const faultcode = childText(fault, "faultcode");
  const faultstring = childText(fault, "faultstring");
  const detail = faultDetail(fault);
  const status = readStatus(detail);
  const code = status.code ?? parseCode(/^\s*(\d{4})\b/.exec(faultstring ?? "")?.[1]);
  return { code, text: status.text || faultstring, faultcode, faultstring, detailKind: detail?.local };
}

function faultDetail(fault: XmlElement | undefined): XmlElement | undefined {
  if (!fault || fault.local !== "Fault") return undefined;
  // SOAP 1.1 says <detail>; non-compliant peers qualify it or capitalise it (research §1.2).
  const detail = fault.children.find((c) => c.local.toLowerCase() === "detail");
  return detail?.children[0];
}

function parseCode(s: string | undefined): number | undefined {
  if (!s || !/^\d{1,6}$/.test(s.trim())) return undefined;
  return Number(s.trim());
}

/** An address from a typed child (Number/ShortCode/RFC2822Address) or bare text, normalised. */
function readAddress(el: XmlElement | undefined): string | undefined {
  if (!el) return undefined;
  const typed = el.children.find((c) => ["Number", "ShortCode", "RFC2822Address"].includes(c.local)) ?? el.children[0];
  const raw = (typed ?? el).text;
  return normalizeAddress(raw) || undefined;
}

/** Strips blanks and MM1's "/TYPE=PLMN" style suffixes (Nokia MC5.0 puts them inside <Number>). */
function normalizeAddress(raw: string): string {
  return raw.replace(/\/TYPE=[^\s]*$/i, "").replace(/\s+/g, "");
}

export interface DeliveryReport {
  messageId?: string;
  recipient?: string;
  sender?: string;
  date?: string;
  mmStatus?: string;
  statusText?: string;
  version?: string;
}

export function readDeliveryReport(el: XmlElement): DeliveryReport {
  return {
    messageId: childText(el, "MessageID") || undefined,
    recipient: readAddress(child(el, "Recipient")),
    sender: readAddress(child(el, "Sender")),
    date: childText(el, "Date") || childText(el, "TimeStamp") || undefined,
    mmStatus: childText(el, "MMStatus") || undefined,
    statusText: childText(el, "StatusText") || undefined,
    version: childText(el, "MM7Version") || undefined,
  };
}

export interface DeliverFields {
  messageId?: string;
  linkedId?: string;
  sender?: string;
  recipients: string[];
  subject?: string;
  timeStamp?: string;
  contentHref?: string;
  version?: string;
}

export function readDeliverReq(el: XmlElement): DeliverFields {
  const recipients: string[] = [];
  for (const kind of ["To", "Cc", "Bcc"]) {
    for (const list of child(el, "Recipients")?.children.filter((c) => c.local === kind) ?? []) {
      for (const a of list.children) {
        const v = normalizeAddress(a.text);
        if (v) recipients.push(v);
      }
      if (list.children.length === 0 && normalizeAddress(list.text)) recipients.push(normalizeAddress(list.text));
    }
  }
  // Old-style MMSCs put the sender only in SenderIdentification/SenderAddress.
  const sender = readAddress(child(el, "Sender")) ?? readAddress(child(child(el, "SenderIdentification"), "SenderAddress"));
  return {
    messageId: childText(el, "MessageID") || undefined,
    linkedId: childText(el, "LinkedID") || undefined,
    sender,
    recipients,
    subject: child(el, "Subject")?.text,
    timeStamp: childText(el, "TimeStamp") || undefined,
    contentHref: attr(child(el, "Content"), "href"),
    version: childText(el, "MM7Version") || undefined,
  };
}
