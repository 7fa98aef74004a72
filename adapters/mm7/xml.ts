// XML for MM7: escaping for the string templates we send, and a lenient, namespace-aware reader for what
// we receive. Entity expansion is never done: a DOCTYPE (the only place entities can be declared) is
// refused before parsing, so entity bombs and external entities cost nothing.
import { XMLParser } from "fast-xml-parser";

export interface XmlElement {
  /** The name as written, prefix included. */
  name: string;
  local: string;
  /** Resolved namespace URI ("" when none). */
  ns: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element, entities decoded, untrimmed. */
  text: string;
}

export class XmlRefused extends Error {}

const escapes: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };

/** Escapes text and attribute values; also drops characters XML 1.0 cannot carry at all. */
export function escapeXml(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[&<>"']/g, (c) => escapes[c]!).replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, "");
}

const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** Decodes the five predefined entities and character references; anything else is left as written. */
function decodeEntities(value: string): string {
  if (!value.includes("&")) return value;
  return value.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]+);/g, (all, ref: string) => {
    if (ref[0] !== "#") return named[ref] ?? all;
    const code = ref[1] === "x" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : all;
  });
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  cdataPropName: "#cdata",
});

type OrderedNode = Record<string, unknown>;

/**
 * Parses a document into an element tree, or throws XmlRefused when it is not usable XML: a DOCTYPE or
 * ENTITY declaration, no root element, or nesting deeper than `maxDepth`.
 */
export function parseXml(doc: string, maxDepth = 64): XmlElement {
  if (/<!DOCTYPE|<!ENTITY/i.test(doc)) throw new XmlRefused("DOCTYPE/ENTITY declarations are not accepted");
  let ordered: OrderedNode[];
  try {
    ordered = parser.parse(doc) as OrderedNode[];
  } catch (err) {
    throw new XmlRefused(`not well-formed XML: ${(err as Error).message}`);
  }
  const root = ordered.map((n) => toElement(n, new Map(), 0, maxDepth)).find((e) => e !== undefined);
  if (!root) throw new XmlRefused("no root element");
  return root;
}

function toElement(node: OrderedNode, scope: Map<string, string>, depth: number, maxDepth: number): XmlElement | undefined {
  const name = Object.keys(node).find((k) => k !== ":@" && k[0] !== "#");
  if (name === undefined) return undefined;
  if (depth > maxDepth) throw new XmlRefused("XML nested too deeply");
  const rawAttrs = (node[":@"] ?? {}) as Record<string, unknown>;
  const attrs: Record<string, string> = {};
  let inner = scope;
  for (const [k, v] of Object.entries(rawAttrs)) {
    const value = decodeEntities(String(v));
    attrs[k] = value;
    if (k === "xmlns" || k.startsWith("xmlns:")) {
      if (inner === scope) inner = new Map(scope);
      inner.set(k === "xmlns" ? "" : k.slice(6), value.trim());
    }
  }
  const colon = name.indexOf(":");
  const prefix = colon < 0 ? "" : name.slice(0, colon);
  const el: XmlElement = { name, local: name.slice(colon + 1), ns: inner.get(prefix) ?? "", attrs, children: [], text: "" };
  const content = node[name];
  if (Array.isArray(content)) {
    for (const child of content as OrderedNode[]) {
      if ("#text" in child) el.text += decodeEntities(String(child["#text"]));
      else if ("#cdata" in child) el.text += cdataText(child["#cdata"]);
      else {
        const c = toElement(child, inner, depth + 1, maxDepth);
        if (c) el.children.push(c);
      }
    }
  }
  return el;
}

function cdataText(value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => String((v as OrderedNode)["#text"] ?? "")).join("");
  return String(value ?? "");
}

/** The first child with this local name (any namespace, any prefix). */
export function child(el: XmlElement | undefined, local: string): XmlElement | undefined {
  return el?.children.find((c) => c.local === local);
}

/** Trimmed text of the first child with this local name, or undefined. */
export function childText(el: XmlElement | undefined, local: string): string | undefined {
  const c = child(el, local);
  return c === undefined ? undefined : c.text.trim();
}

/** An attribute by local name, whatever its prefix (e.g. `href` or `mm7:href`). */
export function attr(el: XmlElement | undefined, local: string): string | undefined {
  if (!el) return undefined;
  for (const [k, v] of Object.entries(el.attrs)) {
    if (k === local || k.endsWith(":" + local)) return v;
  }
  return undefined;
}
