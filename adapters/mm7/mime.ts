// MIME for MM7: building multipart/related bodies as one byte array (MMSCs want a Content-Length, not
// chunks), and a lenient reader for what MMSCs send: LF or CRLF, header names and values in any case,
// trailing blanks after boundaries, missing headers, nested multiparts (research §4.1).

const CRLF = "\r\n";

export function newBoundary(): string {
  // "_" and "=" never occur in base64 lines, so only text parts can collide, and they are checked.
  return "=_mm7_" + crypto.randomUUID().replaceAll("-", "");
}

/** Header block (including the blank line that ends it). */
function headerBlock(headers: [string, string][]): string {
  let out = "";
  for (const [name, value] of headers) out += `${name}: ${value}${CRLF}`;
  return out + CRLF;
}

/** base64, wrapped at 76 columns with CRLF (RFC 2045 §6.8), as ASCII bytes. */
export function base64Lines(bytes: Uint8Array): Uint8Array {
  const flat = Buffer.from(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"), "latin1");
  const lines = Math.ceil(flat.length / 76);
  // allocUnsafe: every byte is written below, so zero-filling would be wasted work.
  const out = Buffer.allocUnsafe(flat.length + Math.max(0, lines - 1) * 2);
  let o = 0;
  for (let i = 0; i < flat.length; i += 76) {
    if (i > 0) {
      out[o++] = 13;
      out[o++] = 10;
    }
    const line = flat.subarray(i, i + 76);
    out.set(line, o);
    o += line.length;
  }
  return out;
}

export type Chunk = string | Uint8Array;

/** A multipart body: each part is its header block followed by its content. */
export function multipart(boundary: string, parts: { headers: [string, string][]; body: Chunk[] }[]): Chunk[] {
  const out: Chunk[] = [];
  for (const p of parts) {
    out.push(`--${boundary}${CRLF}${headerBlock(p.headers)}`, ...p.body, CRLF);
  }
  out.push(`--${boundary}--${CRLF}`);
  return out;
}

// ---- reading ----

export interface HeaderValue {
  /** Lower-cased main value, e.g. "multipart/related". */
  value: string;
  /** Parameters with lower-cased names and unquoted values. */
  params: Record<string, string>;
}

/** Parses `type/subtype; a=b; c="d;e"` leniently. */
export function parseHeaderValue(raw: string | undefined): HeaderValue {
  const s = raw ?? "";
  const params: Record<string, string> = {};
  let i = s.indexOf(";");
  const value = (i < 0 ? s : s.slice(0, i)).trim().toLowerCase();
  while (i >= 0 && i < s.length) {
    i++;
    const eq = s.indexOf("=", i);
    if (eq < 0) break;
    const name = s.slice(i, eq).trim().toLowerCase();
    let j = eq + 1;
    while (s[j] === " " || s[j] === "\t") j++;
    let v: string;
    if (s[j] === '"') {
      let k = j + 1;
      v = "";
      while (k < s.length && s[k] !== '"') {
        if (s[k] === "\\" && k + 1 < s.length) k++;
        v += s[k];
        k++;
      }
      i = s.indexOf(";", k);
    } else {
      const semi = s.indexOf(";", j);
      v = (semi < 0 ? s.slice(j) : s.slice(j, semi)).trim();
      i = semi;
    }
    if (name && !(name in params)) params[name] = v;
  }
  return { value, params };
}

export interface MimePart {
  /** Lower-cased names; the first occurrence wins. */
  headers: Map<string, string>;
  body: Uint8Array;
}

/** Parses a header block (latin1), unfolding continuation lines. */
function parseHeaders(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if ((line[0] === " " || line[0] === "\t") && last !== undefined) {
      headers.set(last, headers.get(last) + " " + line.trim());
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (headers.has(name)) {
      last = undefined;
      continue;
    }
    headers.set(name, line.slice(colon + 1).trim());
    last = name;
  }
  return headers;
}

function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Splits a part into headers and body at the first blank line (CRLF or LF). */
function splitHeaders(bytes: Uint8Array): MimePart {
  const buf = view(bytes);
  // A part that starts with a blank line has no headers.
  if (buf[0] === 10) return { headers: new Map(), body: bytes.subarray(1) };
  if (buf[0] === 13 && buf[1] === 10) return { headers: new Map(), body: bytes.subarray(2) };
  const crlf = buf.indexOf("\r\n\r\n");
  const lf = buf.indexOf("\n\n");
  let end: number, skip: number;
  if (crlf >= 0 && (lf < 0 || crlf < lf)) [end, skip] = [crlf, 4];
  else if (lf >= 0) [end, skip] = [lf, 2];
  else return { headers: parseHeaders(buf.toString("latin1")), body: new Uint8Array(0) };
  return { headers: parseHeaders(buf.toString("latin1", 0, end)), body: bytes.subarray(end + skip) };
}

/** The parts of a multipart body; [] when the boundary never occurs. Preamble and epilogue are ignored. */
export function splitMultipart(body: Uint8Array, boundary: string): MimePart[] {
  const buf = view(body);
  const delim = Buffer.from("--" + boundary, "latin1");
  const starts: number[] = [];
  let closed = -1;
  for (let at = buf.indexOf(delim); at >= 0; at = buf.indexOf(delim, at + delim.length)) {
    if (at > 0 && buf[at - 1] !== 10) continue; // a delimiter only counts at the start of a line
    const after = buf[at + delim.length];
    // ...and only when the boundary ends there ("--b" must not match "--bb"); blanks may trail it.
    if (after !== undefined && after !== 45 && after !== 13 && after !== 10 && after !== 32 && after !== 9) continue;
    if (buf[at + delim.length] === 45 && buf[at + delim.length + 1] === 45) {
      closed = at;
      break;
    }
    starts.push(at);
  }
  const parts: MimePart[] = [];
  for (let i = 0; i < starts.length; i++) {
    const lineEnd = buf.indexOf(10, starts[i]!);
    if (lineEnd < 0) break;
    const next = starts[i + 1] ?? closed;
    let end = next >= 0 ? next : buf.length;
    // The line break before the next delimiter belongs to the delimiter.
    if (next >= 0 && buf[end - 1] === 10) end--;
    if (next >= 0 && buf[end - 1] === 13) end--;
    if (end < lineEnd + 1) end = lineEnd + 1;
    parts.push(splitHeaders(body.subarray(lineEnd + 1, end)));
  }
  return parts;
}

/** Undoes the Content-Transfer-Encoding: base64 and quoted-printable; anything else is taken as is. */
export function decodeTransfer(part: MimePart): Uint8Array {
  const cte = (part.headers.get("content-transfer-encoding") ?? "").trim().toLowerCase();
  if (cte === "base64") return new Uint8Array(Buffer.from(view(part.body).toString("latin1").replace(/[^A-Za-z0-9+/]/g, ""), "base64"));
  if (cte === "quoted-printable") return decodeQuotedPrintable(part.body);
  return part.body;
}

function decodeQuotedPrintable(bytes: Uint8Array): Uint8Array {
  const text = view(bytes).toString("latin1").replace(/=\r?\n/g, "");
  const out = new Uint8Array(text.length);
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const hex = text[i] === "=" ? text.slice(i + 1, i + 3) : "";
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      out[o++] = parseInt(hex, 16);
      i += 2;
    } else out[o++] = text.charCodeAt(i) & 0xff;
  }
  return out.subarray(0, o);
}

/** Decodes text in the declared charset (WHATWG labels: utf-8, gb2312/gbk, iso-8859-x, …); unknown → UTF-8. */
export function decodeText(bytes: Uint8Array, charset: string | undefined): string {
  const label = (charset ?? "").trim().toLowerCase() || "utf-8";
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label as ConstructorParameters<typeof TextDecoder>[0]);
  } catch {
    decoder = new TextDecoder("utf-8");
  }
  return decoder.decode(bytes);
}

/** Content-ID without angle brackets, blanks or a "cid:" prefix, for matching against href/start. */
export function normalizeCid(raw: string | undefined): string {
  let s = (raw ?? "").trim();
  if (s.toLowerCase().startsWith("cid:")) s = s.slice(4).trim();
  if (s.startsWith("<")) s = s.slice(1);
  if (s.endsWith(">")) s = s.slice(0, -1);
  return s.trim();
}

/** All leaf parts under `part`, nested multiparts opened up to `maxDepth` levels. */
export function leafParts(part: MimePart, maxDepth = 4): MimePart[] {
  const ct = parseHeaderValue(part.headers.get("content-type"));
  if (ct.value.startsWith("multipart/") && ct.params.boundary && maxDepth > 0) {
    const inner = splitMultipart(decodeTransfer(part), ct.params.boundary);
    if (inner.length > 0) return inner.flatMap((p) => leafParts(p, maxDepth - 1));
  }
  return [part];
}
