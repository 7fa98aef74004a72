// The whole HTTP body of a SubmitReq: multipart/related with the SOAP part first, then the MM content
// as a nested multipart/related led by a generated SMIL (research §4.1). Built as one Blob: fetch sends a
// Blob as it is, where it would copy a Uint8Array body first (issue #17: with the media part cached, that
// copy of every SubmitReq was the larger part of a message's cost, and grew with the image).
import type { MediaPart, MmsSubmit } from "../carrier.ts";
import { buildSubmitReq } from "./envelope.ts";
import { base64Lines, multipart, newBoundary, type Chunk } from "./mime.ts";
import type { PartCache } from "./part-cache.ts";
import type { Mm7Settings } from "./settings.ts";
import { buildSmil, slidesFor, type SlideItem } from "./smil.ts";

export interface SubmitMessage {
  /** Its size is the Content-Length. */
  body: Blob;
  /** The HTTP Content-Type header value. */
  contentType: string;
  /** Size of the MM content as the MMSC sees it after decoding: part headers, SMIL, text, raw media. */
  contentBytes: number;
  /** The whole SubmitReq as the MMSC sees it after decoding (SOAP envelope too): what max_message_bytes limits. */
  submitReqBytes: number;
}

const soapCid = "mm7-soap";
const contentCid = "mm7-content";
const smilName = "mms.smil";
const textName = "text.txt";
const encoder = new TextEncoder();

/** A quick lower bound of the content size, to refuse hopeless messages before they queue. */
export function minimumContentBytes(m: MmsSubmit): number {
  return m.media.reduce((n, p) => n + p.bytes.byteLength, 0) + encoder.encode(m.text).byteLength;
}

export function buildSubmitMessage(s: Mm7Settings, ns: string, m: MmsSubmit, now: number, cache: PartCache): SubmitMessage {
  const names = partNames(m.media);
  const textItem: SlideItem | undefined = m.text ? { cid: textName, contentType: "text/plain" } : undefined;
  const smil = buildSmil(slidesFor(m.media.map((p, i) => ({ cid: names[i]!, contentType: p.contentType })), textItem));
  const soap = buildSubmitReq(s, ns, { transactionId: m.messageId, from: m.from, to: m.to, subject: m.subject, contentId: contentCid, now });

  // Text and SOAP are the only parts that could contain a boundary string by chance (or by design).
  let outer = newBoundary();
  let inner = newBoundary();
  while ([soap, m.text].some((t) => t.includes(outer) || t.includes(inner))) [outer, inner] = [newBoundary(), newBoundary()];

  const parts: { headers: [string, string][]; body: Chunk[] }[] = [
    { headers: leafHeaders(`application/smil; charset="utf-8"`, smilName), body: [smil] },
  ];
  let rawMedia = 0;
  let encodedMedia = 0;
  m.media.forEach((p, i) => {
    const encoded = cache.get(p.cacheKey, () => base64Lines(p.bytes));
    rawMedia += p.bytes.byteLength;
    encodedMedia += encoded.byteLength;
    parts.push({ headers: [...leafHeaders(safeContentType(p.contentType), names[i]!), ["Content-Transfer-Encoding", "base64"]], body: [encoded] });
  });
  if (m.text) {
    const headers = leafHeaders(`text/plain; charset="utf-8"`, textName);
    // Raw UTF-8, as MMSCs expect for text; declared 8bit when it is not plain ASCII.
    if (/[^\x00-\x7F]/.test(m.text)) headers.push(["Content-Transfer-Encoding", "8bit"]);
    parts.push({ headers, body: [m.text] });
  }
  const content = multipart(inner, parts);
  const contentLength = concatLength(content);

  const innerType = `multipart/related; boundary="${inner}"; type="application/smil"; start="<${smilName}>"`;
  const chunks = multipart(outer, [
    { headers: [["Content-Type", `text/xml; charset="utf-8"`], ["Content-ID", `<${soapCid}>`]], body: [soap] },
    { headers: [["Content-Type", innerType], ["Content-ID", `<${contentCid}>`]], body: content },
  ]);
  return {
    body: new Blob(chunks),
    contentType: `multipart/related; boundary="${outer}"; type="text/xml"; start="<${soapCid}>"`,
    contentBytes: contentLength - encodedMedia + rawMedia,
    submitReqBytes: concatLength(chunks) - encodedMedia + rawMedia,
  };
}

const noCache = { get: (_key: string, encode: () => Uint8Array) => encode() } as PartCache;

/** submitReqBytes without encoding the media: the structure is built with empty parts, their raw sizes added. */
export function measureSubmitReq(s: Mm7Settings, ns: string, m: MmsSubmit, now: number): number {
  const hollow = { ...m, media: m.media.map((p) => ({ ...p, bytes: new Uint8Array(0) })) };
  return buildSubmitMessage(s, ns, hollow, now, noCache).submitReqBytes + minimumContentBytes({ ...m, text: "" });
}

function leafHeaders(contentType: string, name: string): [string, string][] {
  return [
    ["Content-Type", contentType],
    ["Content-ID", `<${name}>`],
    ["Content-Location", name],
  ];
}

/** Unique, header-safe part names derived from the media file names. */
function partNames(media: MediaPart[]): string[] {
  const taken = new Set([smilName, textName]);
  return media.map((p, i) => {
    let base = p.filename.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[._]+/, "").slice(-60) || `media${i + 1}`;
    if (!base.includes(".")) base += extensionFor(p.contentType);
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${n}-${base}`;
    taken.add(name);
    return name;
  });
}

function extensionFor(contentType: string): string {
  const sub = contentType.toLowerCase().split(";")[0]!.split("/")[1] ?? "";
  const ext = { jpeg: "jpg", "svg+xml": "svg", plain: "txt", quicktime: "mov", mpeg: "mpg" }[sub] ?? sub.replace(/[^a-z0-9]/g, "");
  return ext ? "." + ext : ".bin";
}

function safeContentType(contentType: string): string {
  const t = contentType.trim();
  return /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;\s*[A-Za-z0-9_.-]+=("[^"\r\n]*"|[A-Za-z0-9_.-]+))*$/.test(t) ? t : "application/octet-stream";
}

function concatLength(chunks: Chunk[]): number {
  let n = 0;
  for (const c of chunks) n += typeof c === "string" ? encoder.encode(c).byteLength : c.byteLength;
  return n;
}
