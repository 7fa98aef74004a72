// The endpoint the MMSC posts to: delivery reports, MO messages (DeliverReq) and read replies. It answers
// 1000 only once the pipeline has durably taken the item, so a failure makes the MMSC send it again.
import { readBody } from "../shared/body.ts";
import { matchesSecret, secretDigest } from "../shared/secret.ts";
import type { CarrierEvents, InboundMessage } from "../carrier.ts";
import { buildAnswer, buildErrorFault, type AnswerFields } from "./envelope.ts";
import { readDeliverReq, readDeliveryReport, readEnvelope } from "./envelope-read.ts";
import type { Logger } from "../carrier.ts";
import { decodeText, decodeTransfer, normalizeCid, parseHeaderValue, type MimePart } from "./mime.ts";
import { readPayload } from "./payload.ts";
import { inboundLimit, namespaceUri, type Mm7Settings } from "./settings.ts";
import { answerCodes, isFallbackMmStatus, mmStatusOutcome } from "./status.ts";
import { XmlRefused } from "./xml.ts";

export interface InboundDeps {
  log: Logger;
  now: () => number;
  /** undefined until the carrier is started. */
  events: () => CarrierEvents | undefined;
}

const xmlHeaders = { "Content-Type": 'text/xml; charset="utf-8"' };

export function createInboundHandler(s: Mm7Settings, deps: InboundDeps): (req: Request) => Promise<Response> {
  const limit = inboundLimit(s);
  const expectedAuth = s.inbound_username ? secretDigest(`${s.inbound_username}:${s.inbound_password}`) : undefined;
  const fallbackNs = namespaceUri(s);

  return async function handleInbound(req: Request): Promise<Response> {
    // Answers before the request is understood go out in our own namespace and version.
    let a: AnswerFields = { ns: fallbackNs, version: s.version, transactionId: undefined, code: 0, text: "" };
    const fault = (status: number, code: number, text: string, faultcode: "Client" | "Server" = "Client", extra: Record<string, string> = {}) =>
      new Response(buildErrorFault(s.xml_style, { ...a, code, text }, faultcode), { status, headers: { ...xmlHeaders, ...extra } });
    try {
      if (req.method !== "POST") return new Response("MM7 endpoint: POST only\n", { status: 405, headers: { Allow: "POST" } });
      if (expectedAuth && !matchesSecret(basicCredentials(req.headers.get("authorization")), expectedAuth)) {
        deps.log.warn({ carrier: s.name }, "mm7 inbound: missing or wrong Basic credentials");
        return new Response("authentication required\n", { status: 401, headers: { "WWW-Authenticate": 'Basic realm="mm7"' } });
      }
      const declared = Number(req.headers.get("content-length") ?? "0");
      if (declared > limit) return fault(413, 2004, `request larger than ${limit} bytes`);
      const bytes = await readBody(req.body, limit, "refuse");
      if (!bytes) return fault(413, 2004, `request larger than ${limit} bytes`);

      const payload = readPayload(req.headers.get("content-type"), bytes);
      const env = readEnvelope(payload.soap);
      const version = env.body?.children.find((c) => c.local === "MM7Version")?.text.trim() ?? "";
      a = { ns: env.ns || fallbackNs, version: /^\d+\.\d+\.\d+$/.test(version) ? version : s.version, transactionId: env.transactionId, code: 0, text: "" };
      const kind = env.body?.local;
      if (!env.body) return fault(500, answerCodes.formatCorrupt, "no SOAP body");

      const events = deps.events();
      if (kind === "DeliveryReportReq" || kind === "DeliverReq") {
        if (!events) return fault(500, answerCodes.serviceUnavailable, "not ready, try again later", "Server");
      }
      if (kind === "DeliveryReportReq") {
        const dr = readDeliveryReport(env.body);
        if (!dr.messageId || !dr.mmStatus) return fault(500, answerCodes.validationError, "MessageID and MMStatus are required");
        const outcome = mmStatusOutcome(dr.mmStatus);
        const receipt = {
          carrier: s.name,
          carrierMessageId: dr.messageId,
          outcome,
          code: `mm7:${dr.mmStatus}`,
          message: dr.statusText ?? dr.mmStatus,
          timestamp: timeOr(dr.date, deps.now),
          ...(outcome === "failed" ? { fallbackEligible: isFallbackMmStatus(dr.mmStatus, s.fallback_mmstatus) } : {}),
        };
        if (!(await handOver(() => events!.receipt(receipt)))) return fault(500, answerCodes.serviceUnavailable, "could not record the report, retry later", "Server");
        deps.log.debug({ carrier: s.name, carrierMessageId: dr.messageId, mmStatus: dr.mmStatus }, "mm7 delivery report taken");
        return ok("DeliveryReportRsp");
      }
      if (kind === "DeliverReq") {
        const mo = readDeliverReq(env.body);
        const message: InboundMessage = {
          carrier: s.name,
          channel: "mms",
          // DeliverReq has no MessageID in the schema; LinkedID is what a reply quotes, so it identifies the MO.
          carrierMessageId: mo.messageId ?? mo.linkedId ?? env.transactionId ?? "",
          from: mo.sender ?? "",
          to: mo.recipients[0] ?? "",
          text: "",
          media: [],
          timestamp: timeOr(mo.timeStamp, deps.now),
          ...(mo.subject !== undefined ? { subject: mo.subject.trim() } : {}),
        };
        fillContent(message, payload.attachments);
        if (!(await handOver(() => events!.inbound(message)))) return fault(500, answerCodes.serviceUnavailable, "could not record the message, retry later", "Server");
        deps.log.info({ carrier: s.name, carrierMessageId: message.carrierMessageId, parts: message.media.length }, "mm7 MO message taken");
        return ok("DeliverRsp");
      }
      if (kind === "ReadReplyReq") {
        const rr = env.body.children;
        const field = (n: string) => rr.find((c) => c.local === n)?.text.trim();
        deps.log.info({ carrier: s.name, carrierMessageId: field("MessageID"), mmStatus: field("MMStatus") }, "mm7 read reply (acknowledged, not forwarded)");
        return ok("ReadReplyRsp");
      }
      deps.log.warn({ carrier: s.name, kind }, "mm7 inbound: unsupported request");
      return fault(500, answerCodes.unsupportedOperation, `unsupported operation ${kind}`);
    } catch (err) {
      if (err instanceof XmlRefused) {
        deps.log.warn({ carrier: s.name, reason: err.message }, "mm7 inbound: refused unparsable request");
        return fault(500, answerCodes.formatCorrupt, err.message);
      }
      deps.log.error({ carrier: s.name, err: String(err) }, "mm7 inbound: unexpected error");
      return fault(500, answerCodes.serviceUnavailable, "internal error, retry later", "Server");
    }

    function ok(kind: "DeliveryReportRsp" | "DeliverRsp" | "ReadReplyRsp"): Response {
      return new Response(buildAnswer(s.xml_style, kind, { ...a, code: answerCodes.success, text: "Success" }), { status: 200, headers: xmlHeaders });
    }
  };

  async function handOver(call: () => Promise<void>): Promise<boolean> {
    try {
      await call();
      return true;
    } catch (err) {
      deps.log.error({ carrier: s.name, err: String(err) }, "mm7 inbound: pipeline refused the item; asking the MMSC to retry");
      return false;
    }
  }
}

/** Text parts become the message text, SMIL is layout only, everything else is media. */
function fillContent(message: InboundMessage, parts: MimePart[]): void {
  const texts: string[] = [];
  parts.forEach((part, i) => {
    const ct = parseHeaderValue(part.headers.get("content-type") ?? "text/plain");
    const type = ct.value || "text/plain";
    const bytes = decodeTransfer(part);
    if (type === "application/smil") return;
    if (type === "text/plain") {
      texts.push(decodeText(bytes, ct.params.charset));
      return;
    }
    const filename =
      part.headers.get("content-location")?.trim() ||
      ct.params.name ||
      parseHeaderValue(part.headers.get("content-disposition")).params.filename ||
      normalizeCid(part.headers.get("content-id")) ||
      `part${i + 1}`;
    message.media.push({ contentType: type, filename, base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64") });
  });
  message.text = texts.map((t) => t.trim()).filter(Boolean).join("\n");
}

function timeOr(value: string | undefined, now: () => number): number {
  const t = value ? Date.parse(value) : NaN;
  return Number.isFinite(t) ? t : now();
}


/** "user:pass" from a Basic Authorization header (scheme in any case), "" when absent or another scheme. */
function basicCredentials(header: string | null): string {
  const m = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  return m ? Buffer.from(m[1]!, "base64").toString("utf8") : "";
}

