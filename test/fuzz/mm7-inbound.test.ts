// Hostile MM7 inbound against the compiled binary: DeliveryReportReq XML and DeliverReq MIME, mutated,
// POSTed to /mm7. Every answer must be a proper SOAP response (200 with a *Rsp, or a SOAP Fault;
// 401/405/413 as documented), never a hang or a dead process. Billion laughs and external entities are
// refused quickly and the entity's URL (a local server) is never fetched; one byte over the inbound
// size limit → 413.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { freePort, type Running } from "../support/binary.ts";
import { buildDeliverReqMessage, buildDeliveryReportReq } from "../peers/mm7-stub.ts";
import { FULL, intIn, MM7_IN, pickOf, rng, SEED, startGateway, stopGateway, summary, tempDir, testConfigDoc } from "../chaos/harness.ts";

const CASES = FULL ? 10_000 : 1_000;
const INBOUND_MAX = 65536;
let gw: Running;
let xxeHits = 0;
let xxe: ReturnType<typeof Bun.serve>;
const basic = "Basic " + Buffer.from(`${MM7_IN.username}:${MM7_IN.password}`).toString("base64");

beforeAll(async () => {
  const dir = tempDir("gw-fuzz-mm7-");
  xxe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => (xxeHits++, new Response("<x>leak</x>")) });
  // The MMSC URL points at a closed loopback port: only the inbound side is exercised.
  gw = await startGateway(
    dir,
    testConfigDoc(dir, {
      egress: { allow: [] },
      // Every case must reach the parser: the guessing guard (429 after 30 wrong passwords) has its own test.
      server: { auth_failures_per_minute: 0 },
      carriers: { mms: { kind: "mm7", url: `http://127.0.0.1:${freePort()}/mm7`, inbound_max_bytes: INBOUND_MAX } },
      inbound: { mm7: { path: "/mm7", ...MM7_IN } },
    }),
    freePort(),
  );
});
afterAll(async () => {
  await stopGateway(gw);
  xxe?.stop(true);
});

async function postMm7(body: string | Uint8Array, contentType = 'text/xml; charset="utf-8"', authz = basic) {
  const t0 = performance.now();
  const r = await fetch(`${gw.url}/mm7`, { method: "POST", headers: { "content-type": contentType, authorization: authz, soapaction: '""' }, body, signal: AbortSignal.timeout(10000) });
  return { status: r.status, ct: r.headers.get("content-type") ?? "", text: await r.text(), ms: performance.now() - t0 };
}

const isSoap = (t: string) => /<(\w+:)?Envelope[\s>]/.test(t) && /<(\w+:)?Body[\s>]/.test(t);
const isFault = (t: string) => /<(\w+:)?Fault[\s>]/.test(t);
const isRsp = (t: string) => /(DeliveryReportRsp|DeliverRsp|ReadReplyRsp)/.test(t);

const xmlBits = ["<", ">", "&", "&amp;", "&#0;", "&#xD800;", "]]>", "<![CDATA[x]]>", "<!-- -->", "<?pi?>", '"', "'", "\u0000", "\ud800", "é", "😀", "</soap-env:Body>", "<MessageID>", "<x:y xmlns:x=''/>", "<a>".repeat(300), "xmlns=\"urn:x\""];
const statuses = ["Retrieved", "Forwarded", "Expired", "Rejected", "Indeterminate", "Unrecognised", "", "\u0000", "x".repeat(5000)];

function mutateText(r: () => number, t: string): string {
  for (let k = intIn(r, 1, 4); k > 0; k--) {
    const at = intIn(r, 0, t.length);
    switch (intIn(r, 0, 5)) {
      case 0: t = t.slice(0, at) + pickOf(r, xmlBits) + t.slice(at); break;
      case 1: t = t.slice(0, at) + t.slice(at + intIn(r, 1, 40)); break;
      case 2: t = t.slice(0, at); break;
      case 3: t = t.replace(/<(\/?)([\w:]+)/, (_m, s, n) => `<${s}${r() < 0.5 ? n.toUpperCase() : n.replace(/^[\w-]+:/, "")}`); break;
      case 4: t = t.slice(0, at) + t.slice(at, at + 50).repeat(intIn(r, 2, 40)) + t.slice(at + 50); break;
      default: t = t.replace(/REL-6-MM7-1-4/g, pickOf(r, ["REL-5-MM7-1-0", "", "x", "REL-99"])); break;
    }
  }
  return t;
}

function mutateBytes(r: () => number, b: Uint8Array): Uint8Array {
  const out = Buffer.from(b);
  for (let k = intIn(r, 1, 8); k > 0; k--) out[intIn(r, 0, out.length - 1)] = intIn(r, 0, 255);
  return r() < 0.3 ? out.subarray(0, intIn(r, 0, out.length)) : out;
}

function hostile(r: () => number, i: number): { body: string | Uint8Array; ct: string; authz?: string } {
  const pick = r();
  if (pick < 0.45) {
    const xml = buildDeliveryReportReq({ messageId: r() < 0.5 ? `fz-${i}` : pickOf(r, ["", "\u0000", "x".repeat(3000), "<a>"]).replace(/</g, "&lt;"), status: pickOf(r, statuses).replace(/\u0000/g, "&#0;") });
    return { body: mutateText(r, xml), ct: pickOf(r, ['text/xml; charset="utf-8"', "application/soap+xml", "text/plain", "", "text/xml; charset=gb2312"]) };
  }
  if (pick < 0.85) {
    const m = buildDeliverReqMessage({ from: "+12025550998", to: "18885551234", subject: "s", text: pickOf(r, ["hi", "ü", ""]), media: [{ contentType: "image/jpeg", filename: "a.jpg", bytes: new Uint8Array(intIn(r, 0, 2000)) }] });
    const ct = r() < 0.2 ? m.contentType.replace(/boundary="[^"]+"/, pickOf(r, ['boundary=""', "boundary=x", "", 'boundary="' + "b".repeat(500) + '"'])) : m.contentType;
    return { body: r() < 0.5 ? mutateBytes(r, m.body) : new TextEncoder().encode(mutateText(r, Buffer.from(m.body).toString("latin1"))), ct };
  }
  if (pick < 0.93) return { body: new Uint8Array(Array.from({ length: intIn(r, 0, 3000) }, () => intIn(r, 0, 255))), ct: pickOf(r, ["multipart/related; boundary=z", "text/xml", "application/octet-stream"]) };
  return { body: buildDeliveryReportReq({ messageId: `fz-${i}`, status: "Retrieved" }), ct: "text/xml", authz: pickOf(r, ["", "Basic ", "Basic bW1zYzp3cm9uZw==", "Bearer x", basic.toLowerCase()]) };
}

test(`MM7 inbound: ${CASES} mutated requests → SOAP answers only, never a hang`, async () => {
  const r = rng(SEED ^ 0x77);
  const counts: Record<string, number> = {};
  const problems: string[] = [];
  let slowest = 0;
  let next = 0;
  const started = Date.now();
  const worker = async () => {
    while (next < CASES) {
      const i = next++;
      const c = hostile(r, i);
      let a;
      try {
        a = await postMm7(c.body, c.ct, c.authz ?? basic);
      } catch (e) {
        problems.push(`case ${i}: no answer (${(e as Error).name})`);
        continue;
      }
      slowest = Math.max(slowest, a.ms);
      const kind = a.status === 200 && isSoap(a.text) && isRsp(a.text) ? "200-rsp" : isSoap(a.text) && isFault(a.text) ? `${a.status}-fault` : a.status === 401 ? "401" : `bad-${a.status}`;
      counts[kind] = (counts[kind] ?? 0) + 1;
      if (kind.startsWith("bad-") || (kind !== "401" && !/xml/i.test(a.ct))) problems.push(`case ${i}: ${a.status} ${a.ct} ${a.text.slice(0, 200)}`);
      if (a.status >= 500 && a.status !== 500) problems.push(`case ${i}: status ${a.status}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const alive = gw.proc.exitCode === null && (await fetch(`${gw.url}/healthz`)).ok;
  summary(`fuzz: mm7-inbound cases=${next} answers=${JSON.stringify(counts)} problems=${problems.length} slowest_ms=${Math.round(slowest)} process_alive=${alive} elapsed_s=${Math.round((Date.now() - started) / 1000)}`);
  expect(problems.slice(0, 10)).toEqual([]);
  expect(alive).toBe(true);
}, FULL ? 900_000 : 120_000);

test("billion laughs and external entities: refused quickly, the entity URL never fetched; one byte over the size limit → 413", async () => {
  const lol = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ""};`.repeat(10)}">`).join("")}]><soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body><DeliveryReportReq><MessageID>&lol9;</MessageID><MMStatus>Retrieved</MMStatus></DeliveryReportReq></soap-env:Body></soap-env:Envelope>`;
  const ext = buildDeliveryReportReq({ messageId: "XXE", status: "Retrieved" }).replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:${xxe.port}/xxe"><!ENTITY % p SYSTEM "http://127.0.0.1:${xxe.port}/p"> %p;]>`).replace(">XXE<", ">&x;<");
  const a = await postMm7(lol);
  const b = await postMm7(ext);
  const base = Buffer.from(buildDeliveryReportReq({ messageId: "size", status: "Retrieved" }));
  const pad = (n: number) => Buffer.concat([base, Buffer.alloc(n - base.length, 0x20)]);
  const atLimit = await postMm7(pad(INBOUND_MAX));
  const over = await postMm7(pad(INBOUND_MAX + 1));
  await Bun.sleep(300);
  summary(`fuzz: mm7 xml-bombs billion_laughs=${a.status}/${Math.round(a.ms)}ms external_entity=${b.status}/${Math.round(b.ms)}ms entity_url_hits=${xxeHits} at_limit=${atLimit.status} one_byte_over=${over.status}`);
  expect(isFault(a.text) && a.ms < 1000).toBe(true);
  expect(isFault(b.text) && b.ms < 1000).toBe(true);
  expect(xxeHits).toBe(0);
  expect(atLimit.status).toBe(200);
  expect(over.status).toBe(413);
});
