// MM7 SubmitReq build throughput: the whole HTTP body (SOAP + SMIL + base64 media) for a 100 KB image,
// with the encoded part cached per cacheKey (a campaign) and uncached (every image different).
// Run: ./node_modules/.bin/bun bench/mm7.ts
import type { MmsSubmit } from "../adapters/carrier.ts";
import { buildSubmitReq } from "../adapters/mm7/envelope.ts";
import { PartCache } from "../adapters/mm7/part-cache.ts";
import { namespaceUri, resolveMm7Settings } from "../adapters/mm7/settings.ts";
import { buildSubmitMessage } from "../adapters/mm7/submit-message.ts";
import { classifySubmitAnswer } from "../adapters/mm7/submit-response.ts";

const s = resolveMm7Settings({ url: "http://mmsc/mm7", vaspid: "V", vasid: "S", service_code: "SC" });
const ns = namespaceUri(s);
const image = new Uint8Array(100 * 1024).map((_, i) => (i * 2654435761) >>> 24);
const base: MmsSubmit = {
  messageId: "msg_000000",
  from: "12345",
  to: "12025550123",
  subject: "Weekend sale",
  text: "50% off everything this weekend. Reply STOP to opt out.",
  media: [{ contentType: "image/jpeg", bytes: image, cacheKey: "img", filename: "sale.jpg" }],
};

/** Rates measured by the last call of `buildFigures` (name → per second), for bench/mm7-e2e.ts. */
export const figures = new Map<string, number>();

function measure(name: string, iterations: number, fn: (i: number) => void): void {
  for (let i = 0; i < Math.min(200, iterations); i++) fn(i); // warm-up
  const t = performance.now();
  for (let i = 0; i < iterations; i++) fn(i);
  const ms = performance.now() - t;
  figures.set(name, (iterations / ms) * 1000);
  if (verbose) console.log(`${name.padEnd(52)} ${Math.round((iterations / ms) * 1000).toLocaleString("en-US").padStart(10)} /s   ${((ms / iterations) * 1000).toFixed(1).padStart(8)} µs each`);
}

let verbose = import.meta.main;

/** Runs every measurement once (in this process) and returns name → per second. */
export function buildFigures(scale = 1, print = false): Map<string, number> {
  verbose = print;
  figures.clear();
  run(scale);
  return new Map(figures);
}

function run(scale: number): void {
  const now = Date.now();
  let bytes = 0;
  measure("SubmitReq SOAP envelope only (string template)", 50_000 * scale, (i) => {
    bytes += buildSubmitReq(s, ns, { transactionId: `msg_${i}`, from: base.from, to: base.to, subject: base.subject, contentId: "c", now }).length;
  });

  const cached = new PartCache(s.media_cache_bytes);
  measure("whole body, 100 KB image, cached (campaign)", 5_000 * scale, (i) => {
    bytes += buildSubmitMessage(s, ns, { ...base, messageId: `msg_${i}` }, now, cached).body.size;
  });

  const uncached = new PartCache(s.media_cache_bytes);
  measure("whole body, 100 KB image, uncached (new key each)", 2_000 * scale, (i) => {
    bytes += buildSubmitMessage(s, ns, { ...base, messageId: `msg_${i}`, media: [{ ...base.media[0]!, cacheKey: `img-${i}` }] }, now, uncached).body.size;
  });

  const rsp = new TextEncoder().encode(
    `<?xml version="1.0"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header><TransactionID xmlns="${ns}" env:mustUnderstand="1">msg_1</TransactionID></env:Header><env:Body><SubmitRsp xmlns="${ns}"><MM7Version>6.8.0</MM7Version><Status><StatusCode>1000</StatusCode><StatusText>Success</StatusText></Status><MessageID>369500617770864640</MessageID></SubmitRsp></env:Body></env:Envelope>`,
  );
  measure("SubmitRsp parse + classify", 50_000 * scale, () => {
    bytes += classifySubmitAnswer(s, { status: 200, contentType: "text/xml", retryAfter: null, body: rsp }, now).result.kind.length;
  });

  const one = buildSubmitMessage(s, ns, base, now, cached);
  if (verbose) console.log(`body size with a 100 KB image: ${one.body.size} bytes on the wire, ${one.contentBytes} bytes decoded content`);
  if (bytes < 0) console.log(bytes); // keeps the work observable
}

if (import.meta.main) run(1);
