// Finds the SOAP document in whatever an MMSC sent: a bare XML body, or a multipart whose SOAP part is
// named by `start`, or has an XML type, or simply comes first. The declared charset is honoured.
import { decodeText, decodeTransfer, leafParts, normalizeCid, parseHeaderValue, splitMultipart, type MimePart } from "./mime.ts";

export interface Payload {
  /** The SOAP document, decoded to a string. */
  soap: string;
  /** Every other leaf part (nested multiparts opened), in order. */
  attachments: MimePart[];
}

const xmlTypes = ["text/xml", "application/xml", "application/soap+xml"];

export function readPayload(contentType: string | null | undefined, bytes: Uint8Array): Payload {
  const ct = parseHeaderValue(contentType ?? "");
  const boundary = ct.value.startsWith("multipart/") ? ct.params.boundary : undefined;
  const parts = boundary ? splitMultipart(bytes, boundary) : [];
  // Skycore declares multipart/related on bare XML bodies; no parts found means the body is the document.
  if (parts.length === 0) return { soap: decodeXml(bytes, ct.params.charset), attachments: [] };
  const start = normalizeCid(ct.params.start);
  let index = start ? parts.findIndex((p) => normalizeCid(p.headers.get("content-id")) === start) : -1;
  if (index < 0) index = parts.findIndex((p) => xmlTypes.includes(parseHeaderValue(p.headers.get("content-type")).value));
  if (index < 0) index = 0;
  const soapPart = parts[index]!;
  const soapType = parseHeaderValue(soapPart.headers.get("content-type"));
  return {
    soap: decodeXml(decodeTransfer(soapPart), soapType.params.charset),
    attachments: parts.filter((_, i) => i !== index).flatMap((p) => leafParts(p)),
  };
}

/** Charset precedence: a byte-order mark, the MIME charset, the XML declaration, then UTF-8. */
function decodeXml(bytes: Uint8Array, charset: string | undefined): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return decodeText(bytes.subarray(2), "utf-16le");
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return decodeText(bytes.subarray(2), "utf-16be");
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return decodeText(bytes.subarray(3), "utf-8");
  if (charset) return decodeText(bytes, charset);
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 200)).toString("latin1");
  const declared = /^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']/.exec(head)?.[1];
  return decodeText(bytes, declared);
}
