// The operator's first check of an MMSC. MM7 has no "ping", so the probe sends a CancelReq for a
// MessageID no MMSC has issued: the MMSC must check who is asking before it looks the message up, so
// "Message ID not found" (or any answer past identification) proves the credentials and delivers nothing.
import { randomUUID } from "node:crypto";
import type { ProbeResult } from "../carrier-probe.ts";
import { mmscEndpoint, postSubmit } from "./client.ts";
import { buildCancelReq } from "./envelope.ts";
import { namespaceUri, type Mm7Settings } from "./settings.ts";
import { httpStatusClass, statusRow } from "./status.ts";
import { readMm7Status } from "./submit-response.ts";

/** Answers that say the request was refused before the MMSC got to identifying us (or the MMSC lacks CancelReq). */
const notVerifiable = new Set([2007, 3005, 4003, 4004]);

export async function probeMmsc(s: Mm7Settings, fetchFn: typeof fetch = fetch): Promise<ProbeResult> {
  const endpoint = mmscEndpoint(s);
  const id = `mms-gateway-probe-${randomUUID()}`;
  const body = new Blob([buildCancelReq(s, namespaceUri(s), id, id)]);
  const message = { body, contentType: 'text/xml; charset="utf-8"', contentBytes: body.size, submitReqBytes: body.size };
  const outcome = await postSubmit(endpoint, message, s.timeout_ms, new AbortController().signal, fetchFn);
  if (outcome.kind !== "answer") return { verdict: "failed", detail: `unreachable: ${outcome.message}` };
  const http = outcome.answer;
  const who = endpoint.authorization ? "with the configured credentials" : "without credentials";
  const mm7 = readMm7Status(http);
  if (mm7.code !== undefined) {
    const row = statusRow(mm7.code);
    const said = `${mm7.code} ${row.name}${mm7.text ? `: ${mm7.text}` : ""}`;
    if (row.class === "config" || row.alarm) return { verdict: "failed", detail: `MMSC refused ${who} (HTTP ${http.status}): ${said}` };
    if (notVerifiable.has(mm7.code)) {
      return { verdict: "unverified", detail: `reachable, credentials not verifiable: CancelReq answered ${said}` };
    }
    return { verdict: "ok", detail: `answered ${who}: CancelReq of an unknown message → ${said}` };
  }
  if (httpStatusClass(http.status) === "config") {
    const why = http.status === 401 || http.status === 403 || http.status === 407 ? "credentials refused" : "not an MM7 endpoint";
    return { verdict: "failed", detail: `${why} ${who}: HTTP ${http.status}` };
  }
  return { verdict: "unverified", detail: `reachable, credentials not verifiable: HTTP ${http.status} without an MM7 status` };
}
