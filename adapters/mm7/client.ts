// One SubmitReq over HTTP to the MMSC: Basic auth, SOAPAction "", the body as one Blob so that
// Content-Length is sent and nothing is chunked (NowSMS and others insist on it; research §1.1).
import { readBody } from "../shared/body.ts";
import type { HttpAnswer } from "./submit-response.ts";
import type { Mm7Settings } from "./settings.ts";
import type { SubmitMessage } from "./submit-message.ts";

/** An MMSC answer is a few KB; anything bigger than this is not an MM7 answer and is cut off. */
const maxAnswerBytes = 1024 * 1024;

export type PostOutcome =
  | { kind: "answer"; answer: HttpAnswer }
  | { kind: "timeout"; message: string }
  | { kind: "aborted"; message: string }
  /** Failed before the request could leave: no connection, no name, a refused certificate, a bad URL. */
  | { kind: "transport"; message: string }
  /** The connection broke once it was open: the MMSC may have read the SubmitReq. */
  | { kind: "broken"; message: string };

/**
 * Errors that come before a byte of the request is written (Bun's fetch codes). Anything else, a
 * reset or close above all, may come after the MMSC read the whole SubmitReq, so it is in doubt.
 */
const beforeSending = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "ENETUNREACH", "EHOSTUNREACH", "EADDRNOTAVAIL", "ERR_INVALID_URL", "ConnectionRefused", "FailedToOpenSocket"]);
const certificateError = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT/;

export function failedBeforeSending(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code !== "string") return false;
  // EPROTO names any TLS failure; only one in the handshake (e.g. an https URL to a plain-HTTP port) comes before the request.
  if (code === "EPROTO") return typeof message === "string" && /handshake/i.test(message);
  return beforeSending.has(code) || certificateError.test(code);
}

export interface MmscEndpoint {
  url: string;
  /** The URL for logs and /readyz: scheme, host, port and path only (a key may sit in the query). */
  redactedUrl: string;
  authorization?: string;
}

/** Credentials may be configured as settings or, Mbuni style, inside the URL (http://user:pass@host/mm7). */
export function mmscEndpoint(s: Mm7Settings): MmscEndpoint {
  let url = s.url;
  let redactedUrl = "(invalid URL)";
  let username = s.username;
  let password = s.password;
  try {
    const u = new URL(s.url);
    redactedUrl = `${u.protocol}//${u.host}${u.pathname}`;
    if (u.username || u.password) {
      if (!username) {
        username = decodeURIComponent(u.username);
        password = decodeURIComponent(u.password);
      }
      u.username = "";
      u.password = "";
      url = u.toString();
    }
  } catch {
    // An invalid URL is reported by fetch at submit time, as a transport error.
  }
  const authorization = username ? "Basic " + Buffer.from(`${username}:${password}`, "utf8").toString("base64") : undefined;
  return { url, redactedUrl, authorization };
}

export async function postSubmit(
  endpoint: MmscEndpoint,
  message: SubmitMessage,
  timeoutMs: number,
  stopSignal: AbortSignal,
  fetchFn: typeof fetch,
): Promise<PostOutcome> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const onStop = () => controller.abort();
  stopSignal.addEventListener("abort", onStop);
  const headers: Record<string, string> = {
    "Content-Type": message.contentType,
    "Content-Length": String(message.body.size),
    SOAPAction: '""',
  };
  if (endpoint.authorization) headers.Authorization = endpoint.authorization;
  try {
    const res = await fetchFn(endpoint.url, { method: "POST", headers, body: message.body, signal: controller.signal, redirect: "manual" });
    const body = (await readBody(res.body, maxAnswerBytes, "cut"))!;
    return {
      kind: "answer",
      answer: { status: res.status, contentType: res.headers.get("content-type"), retryAfter: res.headers.get("retry-after"), body },
    };
  } catch (err) {
    if (timedOut) return { kind: "timeout", message: `no answer within ${timeoutMs} ms` };
    if (stopSignal.aborted) return { kind: "aborted", message: "carrier stopped while the submit was in flight" };
    if (failedBeforeSending(err)) return { kind: "transport", message: describe(err) };
    return { kind: "broken", message: describe(err) };
  } finally {
    clearTimeout(timer);
    stopSignal.removeEventListener("abort", onStop);
  }
}


function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return [e.code, e.message].filter(Boolean).join(": ") || String(err);
}
