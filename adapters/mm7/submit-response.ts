// Turns whatever came back for a SubmitReq into a SubmitResult: SubmitRsp, RSErrorRsp, SOAP Fault, a
// 200 with an error code, a 500 with a fault, bare HTTP errors, garbage (research §5.1: parse the body
// whatever the HTTP status).
import type { SubmitResult } from "../carrier.ts";
import { readEnvelope, readFault, readStatus, type Mm7Status } from "./envelope-read.ts";
import { readPayload } from "./payload.ts";
import type { Mm7Settings } from "./settings.ts";
import { httpStatusClass, statusRow, type StatusClass } from "./status.ts";

export interface SubmitAnswer {
  result: SubmitResult;
  /** Set when the answer shows a configuration problem: the health alarm's detail. */
  alarm?: string;
}

export interface HttpAnswer {
  status: number;
  contentType: string | null;
  retryAfter: string | null;
  body: Uint8Array;
}

export function classifySubmitAnswer(s: Mm7Settings, http: HttpAnswer, now: number): SubmitAnswer {
  const retryAfterMs = parseRetryAfter(http.retryAfter, now);
  const mm7 = readMm7Status(http);
  if (mm7.code !== undefined) {
    const row = statusRow(mm7.code);
    const message = `${mm7.code} ${row.name}${mm7.text ? ": " + mm7.text : ""}`;
    const code = `mm7:${mm7.code}`;
    if (row.class === "ok") {
      if (!mm7.messageId) return { result: { kind: "ok", carrierMessageIds: [] } };
      return { result: { kind: "ok", carrierMessageIds: [mm7.messageId] } };
    }
    const result = byClass(s, row.class, code, message, retryAfterMs, s.fallback_status_codes.includes(mm7.code));
    return row.class === "config" || row.alarm ? { result, alarm: message } : { result };
  }
  let cls: StatusClass = httpStatusClass(http.status);
  // A fault without an MM7 code: "Client" means our request is at fault and a resend will not help.
  if (cls !== "config" && mm7.faultcode && /client/i.test(mm7.faultcode)) cls = "permanent";
  const readable = mm7.faultstring ? `: ${mm7.faultstring}` : mm7.parsed ? ": no status code in the answer" : ": unreadable answer";
  const ok2xx = http.status >= 200 && http.status < 300;
  const code = !ok2xx ? `mm7:http-${http.status}` : mm7.faultcode ? "mm7:fault" : "mm7:bad-response";
  const message = `HTTP ${http.status}${readable}`;
  // A 2xx we cannot read may be a SubmitRsp the MMSC acted on: in doubt, never resent blindly.
  if (code === "mm7:bad-response") return { result: { kind: "temporary", code, message, inDoubt: true } };
  const result = byClass(s, cls, code, message, retryAfterMs, false);
  return cls === "config" ? { result, alarm: message } : { result };
}

function byClass(s: Mm7Settings, cls: StatusClass, code: string, message: string, retryAfterMs: number | undefined, fallback: boolean): SubmitResult {
  if (cls === "temporary") return retryAfterMs === undefined ? { kind: "temporary", code, message } : { kind: "temporary", code, message, retryAfterMs };
  // Every message would fail alike until an operator fixes the configuration, so keep them (retry later).
  if (cls === "config" && s.config_error_retry_after_ms > 0) {
    return { kind: "temporary", code, message, retryAfterMs: Math.max(retryAfterMs ?? 0, s.config_error_retry_after_ms) };
  }
  return { kind: "permanent", code, message, fallbackEligible: fallback };
}

export interface ReadStatus extends Mm7Status {
  messageId?: string;
  faultcode?: string;
  faultstring?: string;
  parsed: boolean;
}

/** The MM7 status in any answer: a response body, RSErrorRsp or SOAP Fault, whatever the HTTP status. */
export function readMm7Status(http: HttpAnswer): ReadStatus {
  if (http.body.byteLength === 0) return { parsed: false };
  try {
    const env = readEnvelope(readPayload(http.contentType, http.body).soap);
    const body = env.body;
    if (!body) return { parsed: true };
    if (body.local === "Fault") {
      const f = readFault(body);
      return { code: f.code, text: f.text, faultcode: f.faultcode, faultstring: f.faultstring, parsed: true };
    }
    const status = readStatus(body);
    const messageId = body.children.find((c) => c.local === "MessageID")?.text.trim() || undefined;
    return { ...status, messageId, parsed: true };
  } catch {
    return { parsed: false };
  }
}

/** Retry-After as delta-seconds or an HTTP date; capped at a day so a silly value cannot park messages. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - now;
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return Math.min(ms, 86_400_000);
}
