// Hostile input for POST /mms and /sms against the compiled binary: valid bodies mutated (types,
// huge and odd unicode, nesting, duplicate keys, conflicting aliases, boundary sizes, broken bytes,
// content types). Each answer must be 200/400/413/415/429 with a JSON body (400 naming a field),
// never 500, never a hang; the process never dies.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { freePort, type Running } from "../support/binary.ts";
import { auth, FULL, intIn, pickOf, rng, SEED, startGateway, stopGateway, summary, tempDir, testConfigDoc } from "../chaos/harness.ts";

const CASES = FULL ? 10_000 : 1_000;
const MAX_BODY = 8192;
let gw: Running;

beforeAll(async () => {
  const dir = tempDir("gw-fuzz-json-");
  // Paused: everything accepted stays queued, so the fuzz never leaves the process; egress allows nothing.
  gw = await startGateway(dir, testConfigDoc(dir, { delivery: { paused: true }, egress: { allow: [] }, server: { max_body_bytes: MAX_BODY } }), freePort());
});
afterAll(() => stopGateway(gw));

const odd = ["\u0000", "\ud800", "\udfff", "\u202e", "\ufeff", "𝕏", "👩‍👩‍👧", "\u0301".repeat(50), "ß", "İ", "\n\r\t", "%00", "' OR 1=1 --", "<script>", "${jndi:x}", "../../etc/passwd"];
const fields = ["subject", "title", "fallback_text", "fallback", "media", "from", "sender", "to", "recipient", "msisdn", "text", "message", "body", "request_id", "requestId", "id", "custom_data", "customData", "callback_url", "webhook_url", "metadata", "__proto__", "constructor"];

function valid(r: () => number, n: number): Record<string, unknown> {
  return {
    to: `0012025${String(n).padStart(6, "0")}`,
    from: pickOf(r, ["18885551234", "+18885551234", "ACME", "12345"]),
    subject: "Hi",
    text: "Hello",
    fallback_text: "Hello (SMS)",
    request_id: `fz-${SEED}-${n}`,
    custom_data: "cd=1",
    callback_url: "https://example.invalid/cb",
    metadata: { c: 1 },
    media: { url: "https://example.invalid/a.jpg" },
  };
}

function value(r: () => number, depth = 0): unknown {
  switch (intIn(r, 0, 11)) {
    case 0: return null;
    case 1: return intIn(r, -1e6, 1e6) * (r() < 0.2 ? 1e300 : 1);
    case 2: return r() < 0.5;
    case 3: return "";
    case 4: return pickOf(r, odd).repeat(intIn(r, 1, 300));
    case 5: return "x".repeat(pickOf(r, [79, 80, 81, 255, 256, 257, 1023, 4096, 16384, 16385]));
    case 6: return depth > 3 ? [] : Array.from({ length: intIn(r, 0, 6) }, () => value(r, depth + 1));
    case 7: return depth > 3 ? {} : Object.fromEntries(Array.from({ length: intIn(r, 0, 4) }, () => [pickOf(r, fields), value(r, depth + 1)]));
    case 8: return pickOf(r, ["0012025550123", "+12025550123", "00123", "0012345678901234567", "http://127.0.0.1/x", "ftp://x/y", "javascript:alert(1)", "https://", "http://[::1]:1/", "https://a.b/c"]);
    case 9: return { url: pickOf(r, ["https://example.invalid/a.jpg", "", 1, null, "http://169.254.169.254/"]), content_type: pickOf(r, ["image/jpeg", "nope", 7, "a/b;c=d"]) };
    case 10: return Array.from({ length: intIn(r, 4, 7) }, () => ({ url: "https://example.invalid/x.png" }));
    default: return NaN;
  }
}

function nested(depth: number, kind: "[" | "{"): string {
  return kind === "[" ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

/** One hostile request: [path, body text, content-type]. */
function mutate(r: () => number, n: number): [string, string, string] {
  const path = r() < 0.6 ? "/mms" : "/sms";
  const b = valid(r, n);
  let ct = "application/json";
  const ops = intIn(r, 1, 3);
  let text: string | null = null;
  for (let i = 0; i < ops; i++) {
    switch (intIn(r, 0, 12)) {
      case 0: b[pickOf(r, fields)] = value(r); break;
      case 1: delete b[pickOf(r, Object.keys(b))]; break;
      case 2: b[pickOf(r, ["title", "sender", "recipient", "message", "requestId", "customData", "webhook_url", "fallback"])] = value(r); break; // alias, maybe conflicting
      case 3: b.metadata = JSON.parse(nested(intIn(r, 1, 60), "{")); break;
      case 4: b.custom_data = "c".repeat(pickOf(r, [16383, 16384, 16385])); break;
      case 5: b.request_id = "r".repeat(pickOf(r, [255, 256, 257])) + n; break;
      case 6: b.subject = "s".repeat(pickOf(r, [79, 80, 81])); break;
      case 7: ct = pickOf(r, ["text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=utf-16", "application/vnd.api+json", "APPLICATION/JSON", "multipart/form-data; boundary=x"]); break;
      case 8: text = JSON.stringify(b).replace(/^\{/, `{"to":"0012025550999","to":${JSON.stringify(value(r))},`); break; // duplicate keys
      case 9: { const t: string = text ?? JSON.stringify(b); const at = intIn(r, 0, t.length); text = t.slice(0, at) + pickOf(r, ["", "\u0000", "}", "{", '"', "\\", "\\u12", ",,", "\ud800"]) + t.slice(at + intIn(r, 0, 3)); break; } // byte damage
      case 10: text = pickOf(r, [nested(100_000, "["), nested(5000, "{"), "", "null", "[]", "1", '"x"', "true", "{}", "[{}]", "\ufeff{}", " ".repeat(MAX_BODY + 1)]); break;
      case 11: b.text = "t".repeat(pickOf(r, [MAX_BODY - 300, MAX_BODY, MAX_BODY + 1])); break;
      default: b.metadata = { big: "m".repeat(pickOf(r, [16000, 16372, 16373, 16374, 17000])) }; break;
    }
  }
  return [path, text ?? JSON.stringify(b), ct];
}

test(`JSON API: ${CASES} mutated requests → only 200/400/413/415/429, JSON bodies, never 500, never a hang`, async () => {
  const r = rng(SEED ^ 0x51);
  const statuses: Record<number, number> = {};
  const problems: string[] = [];
  let slowest = 0;
  let bare413 = 0;
  let next = 0;
  const started = Date.now();
  const deadline = started + (FULL ? 900_000 : 120_000);
  const cases = Array.from({ length: CASES }, (_, i) => mutate(r, i));
  const worker = async () => {
    while (next < CASES && Date.now() < deadline) {
      const i = next++;
      const [path, text, ct] = cases[i]!;
      const t0 = performance.now();
      let status = 0;
      let body = "";
      try {
        const res = await fetch(`${gw.url}${path}`, { method: "POST", headers: { ...auth, "content-type": ct }, body: text, signal: AbortSignal.timeout(10000) });
        status = res.status;
        body = await res.text();
      } catch (e) {
        problems.push(`case ${i}: no answer (${(e as Error).name}) for ${text.slice(0, 120)}`);
        continue;
      }
      slowest = Math.max(slowest, performance.now() - t0);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (![200, 400, 413, 415, 429].includes(status)) problems.push(`case ${i}: status ${status} ${body.slice(0, 200)} for ${ct} ${text.slice(0, 200)}`);
      let j: any;
      try {
        j = JSON.parse(body);
      } catch {
        // Bun's own empty 413 (a body past server.maxRequestBodySize) would land here: counted, and a problem.
        if (status === 413 && body === "") bare413++;
        problems.push(`case ${i}: status ${status} non-JSON body ${JSON.stringify(body.slice(0, 100))} (request ${text.length} chars)`);
        continue;
      }
      if (status === 400 && !(j?.error?.code && typeof j.error.field === "string" && j.error.field.length > 0)) {
        problems.push(`case ${i}: 400 without a field: ${body.slice(0, 200)}`);
      }
      if (status === 200 && typeof j?.id !== "string") problems.push(`case ${i}: 200 without id: ${body}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const alive = gw.proc.exitCode === null && (await fetch(`${gw.url}/healthz`)).ok;
  summary(`fuzz: json-api cases=${next} statuses=${JSON.stringify(statuses)} problems=${problems.length} empty_413_from_bun=${bare413} slowest_ms=${Math.round(slowest)} process_alive=${alive} elapsed_s=${Math.round((Date.now() - started) / 1000)}`);
  expect(problems.slice(0, 10)).toEqual([]);
  expect(next).toBe(CASES);
  expect(alive).toBe(true);
}, FULL ? 1_000_000 : 150_000);
