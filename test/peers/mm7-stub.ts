// A stub MMSC speaking MM7 over real HTTP, for the adapter's tests and the lead's end-to-end tests.
// It parses SubmitReqs STRICTLY with its own code (not the adapter's lenient reader), so a sloppy
// request shows up in `errors`, answers by a scenario function, and can post DeliveryReportReq and
// DeliverReq to a gateway the way an MMSC would.
import { XMLParser } from "fast-xml-parser";

const soapNs = "http://schemas.xmlsoap.org/soap/envelope/";
export const MM7_NS_BASE = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/";
const nsBase = MM7_NS_BASE;

export interface ReceivedPart {
  contentType: string;
  contentId: string;
  contentLocation: string;
  transferEncoding: string;
  /** Decoded bytes. */
  bytes: Uint8Array;
}

export interface ParsedSubmit {
  transactionId: string;
  mustUnderstand: string;
  namespace: string;
  version: string;
  /** Local names of SubmitReq's children, in document order. */
  elementOrder: string[];
  vaspid?: string;
  vasid?: string;
  sender?: { kind: string; value: string };
  to: { kind: string; value: string }[];
  serviceCode?: string;
  subject?: string;
  deliveryReport?: string;
  contentHref: string;
  allowAdaptations?: string;
  smil: string;
  text?: string;
  /** Content parts other than SMIL and text/plain. */
  media: ReceivedPart[];
  parts: ReceivedPart[];
  http: { authorization: string | null; contentLength: string | null; transferEncoding: string | null; soapAction: string | null; contentType: string };
  soapXml: string;
  /** The whole SubmitReq with every base64 part decoded: what an MMSC's size limit is about. */
  decodedBytes: number;
}

export type StubReply =
  | { kind: "ok"; messageId?: string; code?: number }
  | { kind: "status"; code: number; text?: string; httpStatus?: number }
  | { kind: "fault"; code: number; text?: string; httpStatus?: number; detail?: "RSErrorRsp" | "none" }
  | { kind: "raw"; httpStatus: number; body?: string; contentType?: string; headers?: Record<string, string> }
  | { kind: "hang" }
  | { kind: "delay"; ms: number; then: StubReply };

export interface StubOptions {
  scenario?: (req: ParsedSubmit) => StubReply | Promise<StubReply>;
  username?: string;
  password?: string;
  /** Namespace release for answers; default REL-6-MM7-1-4. */
  namespace?: string;
  /** CancelReq (what `mms-gateway probe` sends): false = answer 4003 Unsupported operation, as an MMSC without it. */
  cancelSupported?: boolean;
  /** Refuses (and notes in `errors`) a SubmitReq whose decoded size is over this, like a real MMSC. */
  maxMessageBytes?: number;
}

export interface DeliveryReportInput {
  messageId: string;
  status: string;
  recipient?: string;
  sender?: string;
  date?: string;
  statusText?: string;
  transactionId?: string;
  namespace?: string;
  version?: string;
  username?: string;
  password?: string;
}

export interface DeliverInput {
  from: string;
  to: string;
  subject?: string;
  text?: string;
  media?: { contentType: string; filename: string; bytes: Uint8Array }[];
  linkedId?: string;
  transactionId?: string;
  namespace?: string;
  version?: string;
  username?: string;
  password?: string;
}

export interface GatewayAnswer {
  status: number;
  contentType: string | null;
  body: string;
}

export interface MmscStub {
  url: string;
  port: number;
  received: ParsedSubmit[];
  /** MessageIDs of the CancelReqs received (none was ever issued, so each is answered 2005 or 4003). */
  cancels: string[];
  /** Requests the stub could not accept (bad auth, no Content-Length, chunked, malformed MIME/SOAP). */
  errors: string[];
  stop(): Promise<void>;
  sendDeliveryReport(gatewayUrl: string, input: DeliveryReportInput): Promise<GatewayAnswer>;
  sendDeliverReq(gatewayUrl: string, input: DeliverInput): Promise<GatewayAnswer>;
}

export async function startMmscStub(options: StubOptions = {}): Promise<MmscStub> {
  const received: ParsedSubmit[] = [];
  const cancels: string[] = [];
  const errors: string[] = [];
  const ns = nsBase + (options.namespace ?? "REL-6-MM7-1-4");
  const version = options.namespace?.startsWith("REL-5") ? "5.3.0" : "6.8.0";
  let counter = 0;
  const hanging = new Set<() => void>();

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      if (options.username !== undefined) {
        const expected = "Basic " + Buffer.from(`${options.username}:${options.password ?? ""}`).toString("base64");
        if (req.headers.get("authorization") !== expected) {
          errors.push("bad or missing Authorization");
          return new Response("unauthorized", { status: 401, headers: { "WWW-Authenticate": 'Basic realm="mmsc"' } });
        }
      }
      const contentLength = req.headers.get("content-length");
      const transferEncoding = req.headers.get("transfer-encoding");
      const bytes = new Uint8Array(await req.arrayBuffer());
      const cancel = readCancelReq(req.headers.get("content-type") ?? "", bytes);
      if (cancel) {
        cancels.push(cancel.messageId);
        if (options.cancelSupported === false) return xml(faultXml(ns, version, cancel.tx, 4003, "Unsupported operation", "RSErrorRsp"), 500);
        return xml(envelope(ns, cancel.tx, `<CancelRsp xmlns="${ns}"><MM7Version>${version}</MM7Version>${statusXml(2005, "Message ID not found")}</CancelRsp>`));
      }
      let parsed: ParsedSubmit;
      try {
        if (!contentLength) throw new Error("no Content-Length header");
        if (transferEncoding && /chunked/i.test(transferEncoding)) throw new Error("chunked Transfer-Encoding");
        if (Number(contentLength) !== bytes.byteLength) throw new Error(`Content-Length ${contentLength} but ${bytes.byteLength} bytes`);
        parsed = parseSubmitRequest(req.headers.get("content-type") ?? "", bytes);
        parsed.http = {
          authorization: req.headers.get("authorization"),
          contentLength,
          transferEncoding,
          soapAction: req.headers.get("soapaction"),
          contentType: req.headers.get("content-type") ?? "",
        };
      } catch (err) {
        errors.push((err as Error).message);
        return xml(faultXml(ns, version, undefined, 2007, (err as Error).message, "RSErrorRsp"), 500);
      }
      received.push(parsed);
      if (options.maxMessageBytes !== undefined && parsed.decodedBytes > options.maxMessageBytes) {
        errors.push(`SubmitReq ${parsed.transactionId} is ${parsed.decodedBytes} bytes decoded, over the limit ${options.maxMessageBytes}`);
        return xml(submitRspXml(ns, version, parsed.transactionId, 2001, "Message size exceeds the limit", undefined));
      }
      let reply = options.scenario ? await options.scenario(parsed) : ({ kind: "ok" } as StubReply);
      for (;;) {
        if (reply.kind === "delay") {
          await Bun.sleep(reply.ms);
          reply = reply.then;
          continue;
        }
        if (reply.kind === "hang") {
          // Never answers; released at stop() so the server can close.
          await new Promise<void>((resolve) => hanging.add(resolve));
          return new Response("", { status: 503 });
        }
        break;
      }
      const tx = parsed.transactionId;
      switch (reply.kind) {
        case "ok":
          return xml(submitRspXml(ns, version, tx, reply.code ?? 1000, "Success", reply.messageId ?? `mmsc-${++counter}`));
        case "status":
          return xml(submitRspXml(ns, version, tx, reply.code, reply.text ?? "Error", undefined), reply.httpStatus ?? 200);
        case "fault":
          return xml(faultXml(ns, version, tx, reply.code, reply.text ?? "Error", reply.detail ?? "RSErrorRsp"), reply.httpStatus ?? 500);
        case "raw":
          return new Response(reply.body ?? "", {
            status: reply.httpStatus,
            headers: { ...(reply.contentType ? { "Content-Type": reply.contentType } : {}), ...reply.headers },
          });
      }
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}/mm7`,
    port: server.port!,
    received,
    cancels,
    errors,
    async stop() {
      for (const release of hanging) release();
      await server.stop(true);
    },
    sendDeliveryReport: (gatewayUrl, input) => post(gatewayUrl, 'text/xml; charset="utf-8"', buildDeliveryReportReq(input), input),
    sendDeliverReq: (gatewayUrl, input) => {
      const { contentType, body } = buildDeliverReqMessage(input);
      return post(gatewayUrl, contentType, body, input);
    },
  };
}

function xml(body: string, status = 200): Response {
  return new Response(body, { status, headers: { "Content-Type": 'text/xml; charset="utf-8"' } });
}

async function post(url: string, contentType: string, body: string | Uint8Array, auth: { username?: string; password?: string }): Promise<GatewayAnswer> {
  const headers: Record<string, string> = { "Content-Type": contentType, SOAPAction: '""' };
  if (auth.username !== undefined) headers.Authorization = "Basic " + Buffer.from(`${auth.username}:${auth.password ?? ""}`).toString("base64");
  const res = await fetch(url, { method: "POST", headers, body });
  return { status: res.status, contentType: res.headers.get("content-type"), body: await res.text() };
}

// ---- messages the stub sends ----

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function envelope(ns: string, tx: string | undefined, body: string): string {
  const header = tx === undefined ? "" : `<soap-env:Header><TransactionID xmlns="${ns}" soap-env:mustUnderstand="1">${esc(tx)}</TransactionID></soap-env:Header>`;
  return `<?xml version="1.0" encoding="UTF-8"?><soap-env:Envelope xmlns:soap-env="${soapNs}">${header}<soap-env:Body>${body}</soap-env:Body></soap-env:Envelope>`;
}

function statusXml(code: number, text: string): string {
  return `<Status><StatusCode>${code}</StatusCode><StatusText>${esc(text)}</StatusText></Status>`;
}

export function submitRspXml(ns: string, version: string, tx: string | undefined, code: number, text: string, messageId: string | undefined): string {
  const id = messageId === undefined ? "" : `<MessageID>${esc(messageId)}</MessageID>`;
  return envelope(ns, tx, `<SubmitRsp xmlns="${ns}"><MM7Version>${version}</MM7Version>${statusXml(code, text)}${id}</SubmitRsp>`);
}

export function faultXml(ns: string, version: string, tx: string | undefined, code: number, text: string, detail: "RSErrorRsp" | "none"): string {
  const d = detail === "none" ? "" : `<detail><RSErrorRsp xmlns="${ns}"><MM7Version>${version}</MM7Version>${statusXml(code, text)}</RSErrorRsp></detail>`;
  return envelope(ns, tx, `<soap-env:Fault><faultcode>soap-env:Client</faultcode><faultstring>${esc(text)}</faultstring>${d}</soap-env:Fault>`);
}

function addressXml(v: string): string {
  if (v.includes("@")) return `<RFC2822Address>${esc(v)}</RFC2822Address>`;
  return /^\+?\d{1,6}$/.test(v) ? `<ShortCode>${esc(v)}</ShortCode>` : `<Number>${esc(v)}</Number>`;
}

/** A schema-valid DeliveryReportReq (element order per the derived XSD). */
export function buildDeliveryReportReq(i: DeliveryReportInput): string {
  const ns = nsBase + (i.namespace ?? "REL-6-MM7-1-4");
  const body =
    `<DeliveryReportReq xmlns="${ns}"><MM7Version>${i.version ?? "6.8.0"}</MM7Version><MMSRelayServerID>mm7-stub</MMSRelayServerID>` +
    `<MessageID>${esc(i.messageId)}</MessageID><Recipient>${addressXml(i.recipient ?? "12025550123")}</Recipient>` +
    `<Sender>${addressXml(i.sender ?? "12345")}</Sender><Date>${i.date ?? new Date().toISOString()}</Date>` +
    `<MMStatus>${esc(i.status)}</MMStatus>${i.statusText ? `<StatusText>${esc(i.statusText)}</StatusText>` : ""}</DeliveryReportReq>`;
  return envelope(ns, i.transactionId ?? `dr-${crypto.randomUUID()}`, body);
}

/** A schema-valid DeliverReq with its content as nested multipart/related + SMIL. */
export function buildDeliverReqMessage(i: DeliverInput): { contentType: string; body: Uint8Array } {
  const ns = nsBase + (i.namespace ?? "REL-6-MM7-1-4");
  const soap = envelope(
    ns,
    i.transactionId ?? `mo-${crypto.randomUUID()}`,
    `<DeliverReq xmlns="${ns}"><MM7Version>${i.version ?? "6.8.0"}</MM7Version><MMSRelayServerID>mm7-stub</MMSRelayServerID>` +
      (i.linkedId ? `<LinkedID>${esc(i.linkedId)}</LinkedID>` : "") +
      `<Sender>${addressXml(i.from)}</Sender><Recipients><To>${addressXml(i.to)}</To></Recipients>` +
      `<TimeStamp>${new Date().toISOString()}</TimeStamp>` +
      (i.subject !== undefined ? `<Subject>${esc(i.subject)}</Subject>` : "") +
      `<Content href="cid:mo-content"/></DeliverReq>`,
  );
  const inner = "inner-" + crypto.randomUUID();
  const outer = "outer-" + crypto.randomUUID();
  const media = i.media ?? [];
  const smil = `<smil><body><par dur="5000ms">${media.map((m) => `<img src="cid:${m.filename}"/>`).join("")}${i.text ? '<text src="cid:mo.txt"/>' : ""}</par></body></smil>`;
  const parts: (string | Uint8Array)[] = [
    `--${inner}\r\nContent-Type: application/smil\r\nContent-ID: <mo.smil>\r\n\r\n${smil}\r\n`,
  ];
  for (const m of media) {
    const b64 = Buffer.from(m.bytes).toString("base64").replace(/.{76}/g, "$&\r\n");
    parts.push(`--${inner}\r\nContent-Type: ${m.contentType}\r\nContent-ID: <${m.filename}>\r\nContent-Location: ${m.filename}\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n`);
  }
  if (i.text) parts.push(`--${inner}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-ID: <mo.txt>\r\n\r\n${i.text}\r\n`);
  parts.push(`--${inner}--\r\n`);
  const all = [
    `--${outer}\r\nContent-Type: text/xml; charset="utf-8"\r\nContent-ID: <mo-soap>\r\n\r\n${soap}\r\n`,
    `--${outer}\r\nContent-Type: multipart/related; boundary="${inner}"; type="application/smil"; start="<mo.smil>"\r\nContent-ID: <mo-content>\r\n\r\n`,
    ...parts,
    `\r\n--${outer}--\r\n`,
  ];
  const body = Buffer.concat(all.map((p) => (typeof p === "string" ? Buffer.from(p) : p)));
  return { contentType: `multipart/related; boundary="${outer}"; type="text/xml"; start="<mo-soap>"`, body: new Uint8Array(body) };
}

// ---- strict reading of a SubmitReq ----

function params(header: string): { type: string; params: Record<string, string> } {
  const [type, ...rest] = header.split(";");
  const p: Record<string, string> = {};
  for (const r of rest) {
    const eq = r.indexOf("=");
    if (eq > 0) p[r.slice(0, eq).trim().toLowerCase()] = r.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
  }
  return { type: (type ?? "").trim().toLowerCase(), params: p };
}

interface RawPart {
  headers: Record<string, string>;
  body: Buffer;
}

/** RFC 2046 framing, strictly: CRLF line ends, "--b" first, "\r\n--b--" last, each part "headers CRLF CRLF body". */
function strictParts(body: Buffer, boundary: string): RawPart[] {
  const first = Buffer.from(`--${boundary}\r\n`);
  if (!body.subarray(0, first.length).equals(first)) throw new Error(`multipart does not start with --${boundary}CRLF`);
  const close = Buffer.from(`\r\n--${boundary}--`);
  const end = body.indexOf(close);
  if (end < 0) throw new Error("no closing delimiter");
  const sep = Buffer.from(`\r\n--${boundary}\r\n`);
  const raw: Buffer[] = [];
  let at = first.length;
  for (;;) {
    const next = body.indexOf(sep, at);
    if (next < 0 || next > end) {
      raw.push(body.subarray(at, end));
      break;
    }
    raw.push(body.subarray(at, next));
    at = next + sep.length;
  }
  return raw.map((r) => {
    const blank = r.indexOf("\r\n\r\n");
    if (blank < 0) throw new Error("part without a header/body separator");
    const headers: Record<string, string> = {};
    for (const line of r.subarray(0, blank).toString("latin1").split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon <= 0) throw new Error(`bad header line "${line}"`);
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { headers, body: r.subarray(blank + 4) };
  });
}

const xmlParser = new XMLParser({ preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: "", parseTagValue: false, trimValues: true, processEntities: true });
type Node = Record<string, unknown>;
const nameOf = (n: Node) => Object.keys(n).find((k) => k !== ":@" && k !== "#text")!;
const localOf = (n: Node) => nameOf(n).replace(/^.*:/, "");
const kids = (n: Node) => (n[nameOf(n)] as Node[]).filter((c) => !("#text" in c));
const textOf = (n: Node) => (n[nameOf(n)] as Node[]).filter((c) => "#text" in c).map((c) => String(c["#text"])).join("");
const attrsOf = (n: Node) => (n[":@"] ?? {}) as Record<string, string>;
const find = (n: Node | undefined, local: string) => (n ? kids(n).find((c) => localOf(c) === local) : undefined);

/** A CancelReq is a bare text/xml SOAP envelope (no MIME); anything else is left to parseSubmitRequest. */
function readCancelReq(contentType: string, bytes: Uint8Array): { messageId: string; tx?: string } | undefined {
  if (!/^text\/xml/i.test(contentType)) return undefined;
  const doc = xmlParser.parse(Buffer.from(bytes).toString("utf8")) as Node[];
  const env = doc.find((n) => localOf(n) === "Envelope");
  const req = find(find(env, "Body"), "CancelReq");
  if (!req) return undefined;
  const tx = find(find(env, "Header"), "TransactionID");
  return { messageId: textOf(find(req, "MessageID") ?? { MessageID: [] }), tx: tx ? textOf(tx) : undefined };
}

export function parseSubmitRequest(contentType: string, bytes: Uint8Array): ParsedSubmit {
  const ct = params(contentType);
  if (ct.type !== "multipart/related") throw new Error(`Content-Type ${ct.type}, expected multipart/related`);
  if (ct.params.type !== "text/xml") throw new Error('type parameter is not "text/xml"');
  if (!ct.params.start || !ct.params.boundary) throw new Error("no start or boundary parameter");
  const outer = strictParts(Buffer.from(bytes), ct.params.boundary);
  if (outer.length !== 2) throw new Error(`expected 2 outer parts, got ${outer.length}`);
  const [soapPart, contentPart] = outer as [RawPart, RawPart];
  if (soapPart.headers["content-id"] !== ct.params.start) throw new Error("first part is not the start part");
  if (!/^text\/xml/i.test(soapPart.headers["content-type"] ?? "")) throw new Error("SOAP part is not text/xml");
  const soapXml = soapPart.body.toString("utf8");
  if (/<!DOCTYPE/i.test(soapXml)) throw new Error("DOCTYPE in SOAP");
  const doc = xmlParser.parse(soapXml) as Node[];
  const env = doc.find((n) => localOf(n) === "Envelope");
  if (!env || attrsOf(env)[`xmlns:${nameOf(env).split(":")[0]}`] !== soapNs) throw new Error("no SOAP 1.1 Envelope");
  const tx = find(find(env, "Header"), "TransactionID");
  const body = find(env, "Body");
  const submit = body ? kids(body)[0] : undefined;
  if (!tx || !submit || localOf(submit) !== "SubmitReq") throw new Error("no TransactionID header or SubmitReq body");
  const prefix = nameOf(submit).includes(":") ? nameOf(submit).split(":")[0] : "";
  const namespace = attrsOf(submit)[prefix ? `xmlns:${prefix}` : "xmlns"] ?? "";
  const sid = find(submit, "SenderIdentification");
  const senderAddr = find(sid, "SenderAddress");
  const content = find(submit, "Content");
  if (!content) throw new Error("no Content element");
  const href = attrsOf(content).href ?? "";
  const contentCid = `<${href.replace(/^cid:/, "")}>`;
  if (contentPart.headers["content-id"] !== contentCid) throw new Error(`content part Content-ID ${contentPart.headers["content-id"]} does not match href ${href}`);
  const inner = params(contentPart.headers["content-type"] ?? "");
  if (inner.type !== "multipart/related" || inner.params.type !== "application/smil" || !inner.params.start) throw new Error("content is not multipart/related with a SMIL start");
  let decodedBytes = bytes.byteLength;
  const parts = strictParts(contentPart.body, inner.params.boundary!).map((p): ReceivedPart => {
    const cte = (p.headers["content-transfer-encoding"] ?? "").toLowerCase();
    const decoded = new Uint8Array(cte === "base64" ? Buffer.from(p.body.toString("latin1"), "base64") : p.body);
    decodedBytes += decoded.byteLength - p.body.byteLength;
    if (!p.headers["content-id"] || !p.headers["content-location"]) throw new Error("content part without Content-ID or Content-Location");
    if (cte === "base64") {
      for (const line of p.body.toString("latin1").split("\r\n")) if (line.length > 76) throw new Error("base64 line longer than 76");
    }
    return {
      contentType: p.headers["content-type"] ?? "",
      contentId: p.headers["content-id"],
      contentLocation: p.headers["content-location"],
      transferEncoding: cte,
      bytes: decoded,
    };
  });
  if (parts[0]?.contentId !== inner.params.start || !/^application\/smil/.test(parts[0].contentType)) throw new Error("first content part is not the SMIL start");
  const textPart = parts.find((p) => /^text\/plain/.test(p.contentType));
  const addr = (n: Node | undefined) => (n ? { kind: localOf(kids(n)[0]!), value: textOf(kids(n)[0]!) } : undefined);
  return {
    transactionId: textOf(tx),
    mustUnderstand: Object.entries(attrsOf(tx)).find(([k]) => k.endsWith(":mustUnderstand"))?.[1] ?? "",
    namespace,
    version: textOf(find(submit, "MM7Version")!),
    elementOrder: kids(submit).map(localOf),
    vaspid: find(sid, "VASPID") && textOf(find(sid, "VASPID")!),
    vasid: find(sid, "VASID") && textOf(find(sid, "VASID")!),
    sender: addr(senderAddr),
    to: kids(find(find(submit, "Recipients"), "To")!).map((a) => ({ kind: localOf(a), value: textOf(a) })),
    serviceCode: find(submit, "ServiceCode") && textOf(find(submit, "ServiceCode")!),
    subject: find(submit, "Subject") && textOf(find(submit, "Subject")!),
    deliveryReport: find(submit, "DeliveryReport") && textOf(find(submit, "DeliveryReport")!),
    contentHref: href,
    allowAdaptations: attrsOf(content).allowAdaptations,
    smil: Buffer.from(parts[0].bytes).toString("utf8"),
    text: textPart && Buffer.from(textPart.bytes).toString("utf8"),
    media: parts.slice(1).filter((p) => p !== textPart),
    parts,
    http: { authorization: null, contentLength: null, transferEncoding: null, soapAction: null, contentType },
    soapXml,
    decodedBytes,
  };
}
