// A cheap MMSC stub in its own process for bench/mm7-e2e.ts (the strict one in test/integration parses
// every SubmitReq with an XML parser, which would make the harness the bottleneck). It:
//   GET  /img.jpg            — a 100 KB image (the media URL of the campaign; the gateway caches it)
//   GET  /big.jpg?v=TAG      — the real JPEG in the file MMSC_BIG_IMAGE, with TAG in a JPEG comment, so each
//                              TAG is a new source (a new campaign image: fetched and adapted once)
//   POST /mm7                — a SubmitReq: reads the whole body, takes the TransactionID with a regex,
//                              answers SubmitRsp 1000 at once, then posts a DeliveryReportReq (Retrieved)
//                              for the new MessageID to the gateway's MM7 inbound URL
//   POST /target?url=U       — where to post the reports (the gateway starts after the stub)
//   GET  /stats              — {"submits","bytes","reports","reportErrors","mediaFetches","mediaBytes"} (media: GETs of the images)
// Prints {"port":N} on stdout and runs until killed.
import { buildDeliveryReportReq, submitRspXml } from "../test/peers/mm7-stub.ts";

const ns = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4";
const image = new Uint8Array(100 * 1024).map((_, i) => (i * 2654435761) >>> 24);
image.set([0xff, 0xd8, 0xff, 0xe0], 0);
const big = process.env.MMSC_BIG_IMAGE ? new Uint8Array(await Bun.file(process.env.MMSC_BIG_IMAGE).arrayBuffer()) : null;
/** `big` with a COM segment carrying `tag` right after SOI: other bytes, the same picture. */
function tagged(src: Uint8Array, tag: string): Uint8Array {
  const text = new TextEncoder().encode(tag);
  const out = new Uint8Array(src.length + 4 + text.length);
  out.set(src.subarray(0, 2), 0);
  out.set([0xff, 0xfe, (text.length + 2) >> 8, (text.length + 2) & 0xff], 2);
  out.set(text, 6);
  out.set(src.subarray(2), 6 + text.length);
  return out;
}
let target = "";
let submits = 0;
let bytes = 0;
let reports = 0;
let reportErrors = 0;
let mediaFetches = 0;
let mediaBytes = 0;
let counter = 0;
const txRe = /TransactionID[^>]*>([^<]*)</;
const dec = new TextDecoder("latin1");

async function report(messageId: string): Promise<void> {
  try {
    const r = await fetch(target, {
      method: "POST",
      headers: { "content-type": 'text/xml; charset="utf-8"', soapaction: '""' },
      body: buildDeliveryReportReq({ messageId, status: "Retrieved", transactionId: `dr-${messageId}` }),
    });
    await r.arrayBuffer();
    if (r.ok) reports++;
    else reportErrors++;
  } catch {
    reportErrors++;
  }
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  maxRequestBodySize: 4 << 20,
  async fetch(req) {
    const url = new URL(req.url);
    if (url.pathname === "/mm7" && req.method === "POST") {
      const body = new Uint8Array(await req.arrayBuffer());
      submits++;
      bytes += body.byteLength;
      const tx = txRe.exec(dec.decode(body.subarray(0, 4096)))?.[1] ?? "none";
      const id = `mmsc-${++counter}`;
      if (target) setTimeout(() => void report(id), 0);
      return new Response(submitRspXml(ns, "6.8.0", tx, 1000, "Success", id), { headers: { "content-type": 'text/xml; charset="utf-8"' } });
    }
    if (url.pathname === "/img.jpg") {
      mediaFetches++;
      mediaBytes += image.byteLength;
      return new Response(image, { headers: { "content-type": "image/jpeg" } });
    }
    if (url.pathname === "/big.jpg" && big) {
      const body = tagged(big, url.searchParams.get("v") ?? "");
      mediaFetches++;
      mediaBytes += body.byteLength;
      return new Response(body, { headers: { "content-type": "image/jpeg" } });
    }
    if (url.pathname === "/target") {
      target = url.searchParams.get("url") ?? "";
      return new Response("ok");
    }
    if (url.pathname === "/stats") return Response.json({ submits, bytes, reports, reportErrors, mediaFetches, mediaBytes });
    return new Response("not found", { status: 404 });
  },
});
console.log(JSON.stringify({ port: server.port }));
process.on("SIGTERM", () => process.exit(0));
