// Strict schema checks for the MM7 XML we generate (research §6): the SOAP Body is lax, so the Body's
// first child (or Fault/detail/*) is cut out with the namespace declarations it inherits re-emitted,
// and validated on its own against the derived MM7 schema, rewritten to the message's namespace.
import { validateXML } from "xmllint-wasm";

const fixtures = new URL("../fixtures/mm7/", import.meta.url);
const mm7Xsd = await Bun.file(new URL("UNOFFICIAL-derived-REL-6-MM7-1-4-subset.xsd", fixtures)).text();
const soapXsd = await Bun.file(new URL("soap11-envelope-min.xsd", fixtures)).text();
const derivedNs = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4";

function schemaFor(ns: string): string {
  return mm7Xsd.replaceAll(derivedNs, ns);
}

/** Namespace declarations on the start tag of the first element named `local` (any prefix). */
function declarationsOf(doc: string, local: string): string[] {
  const m = new RegExp(`<([A-Za-z0-9_-]+:)?${local}\\b[^>]*>`).exec(doc);
  return m ? [...m[0].matchAll(/\s(xmlns(?::[A-Za-z0-9_-]+)?)="([^"]*)"/g)].map((d) => `${d[1]}="${d[2]}"`) : [];
}

/**
 * The first child element of the element named `parentLocal`, as a standalone document with the
 * declarations of the Envelope (its ancestors, in our compact output) re-emitted on it.
 */
export function extractChild(doc: string, parentLocal: string): string {
  const open = new RegExp(`<([A-Za-z0-9_-]+:)?${parentLocal}\\b[^>]*>`).exec(doc);
  if (!open) throw new Error(`no ${parentLocal} element`);
  const prefix = open[1] ?? "";
  const closeTag = `</${prefix}${parentLocal}>`;
  const inner = doc.slice(open.index + open[0].length, doc.lastIndexOf(closeTag)).trim();
  const inherited = declarationsOf(doc, "Envelope");
  const firstTag = /^<([^\s/>]+)([^>]*?)(\/?)>/.exec(inner);
  if (!firstTag) throw new Error(`${parentLocal} has no child element`);
  const own = firstTag[2]!;
  const extra = inherited.filter((d) => !own.includes(d.split("=")[0]! + "="));
  return `<${firstTag[1]}${own}${extra.map((d) => " " + d).join("")}${firstTag[3]}>` + inner.slice(firstTag[0].length);
}

export interface Checked {
  name: string;
  valid: boolean;
  errors: string[];
}

/** Validates each document strictly against the MM7 schema for `ns`, in one xmllint run. */
export async function validateMm7(docs: { name: string; xml: string }[], ns: string): Promise<Checked[]> {
  return run(docs, schemaFor(ns));
}

export async function validateSoapEnvelope(docs: { name: string; xml: string }[]): Promise<Checked[]> {
  return run(docs, soapXsd);
}

async function run(docs: { name: string; xml: string }[], schema: string): Promise<Checked[]> {
  const files = docs.map((d, i) => ({ fileName: `doc${i}.xml`, contents: d.xml }));
  const result = await validateXML({ xml: files, schema: [schema] });
  return docs.map((d, i) => {
    const file = `doc${i}.xml`;
    const errors = result.errors.filter((e) => e.loc?.fileName === file).map((e) => e.message);
    // xmllint prints "<file> validates" for each valid document; anything else is a failure.
    return { name: d.name, valid: result.rawOutput.split("\n").includes(`${file} validates`), errors };
  });
}
