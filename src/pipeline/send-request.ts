// The Send MMS / Send SMS body (contract section 4): aliases folded into canonical names, then every
// field checked, the first problem named in the error.
import { Type as T } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { Channel, MessagePayload } from "../domain/message.ts";

/** Canonical name → the spellings Bloomreach might use for it (BR's page lost the names). */
export const aliases: Record<string, readonly string[]> = {
  subject: ["subject", "title"],
  fallback_text: ["fallback_text", "fallback", "fallback_message", "fallback_sms", "fallback_sms_text"],
  media: ["media"],
  from: ["from", "sender", "source", "originator"],
  to: ["to", "recipient", "destination", "msisdn"],
  text: ["text", "message", "content", "body"],
  request_id: ["request_id", "requestId", "id"],
  custom_data: ["custom_data", "customData"],
  callback_url: ["callback_url", "webhook_url", "callbackUrl", "webhookUrl"],
  metadata: ["metadata"],
};
const mediaUrlAliases = ["url", "link", "src"] as const;
const mediaTypeAliases = ["content_type", "type", "mime_type"] as const;
const known = new Set(Object.values(aliases).flat());
const canonicalOf = new Map(Object.entries(aliases).flatMap(([canonical, names]) => names.map((n) => [n, canonical] as const)));

/**
 * Deeper than this is no message field. Checked without recursion before anything recursive (the
 * alias comparison, the size check, storing) runs, which a deep enough value would overflow.
 */
const maxDepth = 32;

function deeperThanMax(value: unknown): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (!v || typeof v !== "object") continue;
    if (depth > maxDepth) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Fields a plain SMS does not take. */
const mmsOnly = new Set(["subject", "fallback_text", "media"]);

export interface SendLimits {
  subject_max_chars: number;
  media_max_items: number;
  custom_data_max_bytes: number;
  metadata_max_bytes: number;
  request_id_max_chars: number;
  text_max_chars: number;
}

export class InvalidField extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export interface SendRequest {
  requestId: string | null;
  payload: MessagePayload;
  /** Top-level keys we did not recognise (ignored, counted). */
  unknownFields: string[];
}

// Plain TypeBox types only: Elysia's transforming types (t.Numeric, …) would slow every decode.
// Exported for GET /openapi.json, which documents the body from these very schemas.
export const Canonical = T.Object({
  subject: T.Optional(T.String({ description: "MMS subject line (POST /mms only)." })),
  fallback_text: T.Optional(T.String({ description: "SMS sent when the handset cannot take MMS; empty = no fallback (POST /mms only)." })),
  from: T.String({ minLength: 1, description: "Sender: digits with optional + or 00 (number, short code), or an alphanumeric name of at most 11 characters." }),
  to: T.String({ minLength: 1, description: "Recipient MSISDN: 00 or + followed by 7 to 15 digits." }),
  text: T.Optional(T.String({ description: "Message text. An MMS may leave it empty if it has media; an SMS needs it." })),
  request_id: T.Optional(T.Union([T.String(), T.Null()], { description: "Deduplication key per account: a repeat gets the original answer and sends nothing." })),
  custom_data: T.Optional(T.Union([T.String(), T.Null()], { description: "Returned byte for byte in every delivery report." })),
  callback_url: T.String({ minLength: 1, description: "Absolute http(s) URL the delivery reports are posted to." }),
  metadata: T.Optional(T.Union([T.Object({}), T.Null()], { description: "Any JSON object, stored verbatim." })),
});

/** One media item in its canonical spelling (parseMedia also reads the aliases). */
export const MediaItem = T.Object({
  url: T.String({ format: "uri", description: "Absolute http(s) URL the gateway fetches the content from (aliases: link, src)." }),
  content_type: T.Optional(T.String({ description: "MIME type such as image/jpeg; else the fetched Content-Type (aliases: type, mime_type)." })),
});
const checkCanonical = TypeCompiler.Compile(Canonical);

const msisdn = /^(?:00|\+)(\d{7,15})$/;
const numericSender = /^(?:\+|00)?\d{3,15}$/;
const alphaSender = /^[A-Za-z0-9 ._&-]{1,11}$/;

function foldAliases(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [canonical, names] of Object.entries(aliases)) {
    let seen: string | undefined;
    for (const name of names) {
      if (!(name in body)) continue;
      const v = body[name];
      if (seen !== undefined && JSON.stringify(out[canonical]) !== JSON.stringify(v)) {
        throw new InvalidField(canonical, `"${seen}" and "${name}" are the same field with different values`);
      }
      seen = name;
      out[canonical] = v;
    }
  }
  return out;
}

function pick(o: Record<string, unknown>, names: readonly string[], field: string): unknown {
  let value: unknown;
  let seen: string | undefined;
  for (const n of names) {
    if (!(n in o)) continue;
    if (seen !== undefined && o[n] !== value) throw new InvalidField(field, `"${seen}" and "${n}" differ`);
    seen = n;
    value = o[n];
  }
  return value;
}

function parseMedia(raw: unknown, max: number): { url: string; content_type?: string }[] {
  if (raw === undefined || raw === null) return [];
  const items = Array.isArray(raw) ? raw : [raw];
  if (items.length > max) throw new InvalidField("media", `at most ${max} media items`);
  return items.map((item, i) => {
    const field = Array.isArray(raw) ? `media[${i}]` : "media";
    if (!item || typeof item !== "object" || Array.isArray(item)) throw new InvalidField(field, "must be an object {url, content_type?}");
    const o = item as Record<string, unknown>;
    const url = pick(o, mediaUrlAliases, `${field}.url`);
    if (typeof url !== "string" || !isHttpUrl(url)) throw new InvalidField(`${field}.url`, "must be an absolute http(s) URL");
    const type = pick(o, mediaTypeAliases, `${field}.content_type`);
    if (type !== undefined && type !== null && (typeof type !== "string" || !/^[\w.+-]+\/[\w.+-]+/.test(type))) {
      throw new InvalidField(`${field}.content_type`, "must be a MIME type like image/jpeg");
    }
    return typeof type === "string" ? { url, content_type: type.toLowerCase() } : { url };
  });
}

export function isHttpUrl(s: string): boolean {
  if (!/^https?:\/\//i.test(s)) return false;
  try {
    const u = new URL(s);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
  } catch {
    return false;
  }
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** The request_id alone, for replaying a stored refusal even when the rest of the body is invalid. */
export function requestIdOf(body: unknown): string | null {
  if (!body || typeof body !== "object" || Array.isArray(body)) return null;
  for (const n of aliases.request_id!) {
    const v = (body as Record<string, unknown>)[n];
    if (typeof v === "string" && v !== "") return v;
  }
  return null;
}

export function parseSendRequest(body: unknown, channel: Channel, limits: SendLimits): SendRequest {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new InvalidField("body", "must be a JSON object");
  const raw = body as Record<string, unknown>;
  const unknownFields = Object.keys(raw).filter((k) => !known.has(k));
  for (const [name, v] of Object.entries(raw)) {
    if (known.has(name) && deeperThanMax(v)) throw new InvalidField(canonicalOf.get(name)!, `nested deeper than ${maxDepth} levels`);
  }
  const c = foldAliases(raw);
  if (channel === "sms") {
    for (const f of mmsOnly) if (c[f] !== undefined && c[f] !== null && c[f] !== "") throw new InvalidField(f, `not accepted by POST /sms`);
  }
  if (!checkCanonical.Check(c)) {
    const e = checkCanonical.Errors(c).First()!;
    const field = e.path.replace(/^\//, "").split("/")[0] || "body";
    throw new InvalidField(field, c[field] === undefined ? "is required" : `must be ${e.schema.type === "string" ? "a string" : e.schema.type === "object" ? "an object" : "valid"} (${e.message})`);
  }
  const from = (c.from as string).trim();
  if (!numericSender.test(from) && !alphaSender.test(from)) {
    throw new InvalidField("from", "must be a number (digits, optional + or 00) or an alphanumeric name of at most 11 characters");
  }
  const toMatch = msisdn.exec((c.to as string).trim());
  if (!toMatch) throw new InvalidField("to", "must be an MSISDN: 00 or + followed by 7 to 15 digits");
  const subject = (c.subject as string | undefined) ?? "";
  if ([...subject].length > limits.subject_max_chars) throw new InvalidField("subject", `at most ${limits.subject_max_chars} characters`);
  const text = (c.text as string | undefined) ?? "";
  if ([...text].length > limits.text_max_chars) throw new InvalidField("text", `at most ${limits.text_max_chars} characters`);
  const media = channel === "mms" ? parseMedia(raw.media, limits.media_max_items) : [];
  if (channel === "mms" && media.length === 0 && text === "") throw new InvalidField("media", "an MMS needs at least one media item or a non-empty text");
  if (channel === "sms" && text === "") throw new InvalidField("text", "is required for an SMS");
  const requestId = (c.request_id as string | null | undefined) ?? null;
  if (requestId !== null && (requestId === "" || [...requestId].length > limits.request_id_max_chars)) {
    throw new InvalidField("request_id", `must be 1 to ${limits.request_id_max_chars} characters`);
  }
  const customData = (c.custom_data as string | null | undefined) ?? null;
  if (customData !== null && utf8Length(customData) > limits.custom_data_max_bytes) {
    throw new InvalidField("custom_data", `at most ${limits.custom_data_max_bytes} bytes`);
  }
  const callbackUrl = c.callback_url as string;
  if (!isHttpUrl(callbackUrl)) throw new InvalidField("callback_url", "must be an absolute http(s) URL");
  const metadata = c.metadata ?? null;
  if (metadata !== null && utf8Length(JSON.stringify(metadata)) > limits.metadata_max_bytes) {
    throw new InvalidField("metadata", `at most ${limits.metadata_max_bytes} bytes`);
  }
  return {
    requestId,
    unknownFields,
    payload: {
      from: from.replace(/^(\+|00)(?=\d)/, ""),
      to: toMatch[1]!,
      subject,
      text,
      fallback_text: (c.fallback_text as string | undefined) ?? "",
      media,
      custom_data: customData,
      callback_url: callbackUrl,
      metadata,
    },
  };
}
