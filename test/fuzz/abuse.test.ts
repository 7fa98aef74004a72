// Abuse against the compiled binary: media and callback URLs aimed at loopback (by literal in every
// spelling, by the name `localhost`, and through redirects) refused unless allow-listed, with the local
// servers they point at asserting that nothing reached them; every size limit tried one byte over;
// credential guessing rate-limited per client address. The cloud-metadata redirect is checked
// in-process, behind a tripwire that fails the test if anything but loopback is ever dialled.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { freePort, type Running } from "../support/binary.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { ACME_SECRET, postJson, readDb, startGateway, stopGateway, summary, tempDir, testConfigDoc, until } from "../chaos/harness.ts";

const hits = { v4: 0, v6: 0, other127: 0, redirector: 0, media: 0 };
const jpeg = (n: number) => {
  const b = new Uint8Array(n);
  b.set([0xff, 0xd8, 0xff, 0xe0]);
  return b;
};
const servers: { stop(force?: boolean): void }[] = [];
let v4: number, v6: number, other127: number, redirector: number, mediaPort: number;
let closed: Running, open: Running;
let closedDir: string, openDir: string;
let sink: Sink;
const MEDIA_MAX = 2048;

beforeAll(async () => {
  const count = (k: keyof typeof hits) => () => (hits[k]++, new Response(jpeg(100), { headers: { "content-type": "image/jpeg" } }));
  let s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: count("v4") });
  servers.push(s);
  v4 = s.port!;
  s = Bun.serve({ hostname: "::1", port: 0, fetch: count("v6") });
  servers.push(s);
  v6 = s.port!;
  s = Bun.serve({ hostname: "127.0.0.2", port: 0, fetch: count("other127") });
  servers.push(s);
  other127 = s.port!;
  s = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => {
      hits.redirector++;
      return new Response(null, { status: 302, headers: { location: decodeURIComponent(new URL(req.url).searchParams.get("to") ?? "/") } });
    },
  });
  servers.push(s);
  redirector = s.port!;
  s = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => (hits.media++, new Response(jpeg(Number(new URL(req.url).searchParams.get("n"))), { headers: { "content-type": "image/jpeg" } })),
  });
  servers.push(s);
  mediaPort = s.port!;
  sink = startSink(ACME_SECRET);
  closedDir = tempDir("gw-abuse-closed-");
  openDir = tempDir("gw-abuse-open-");
  const limits = { subject_max_chars: 80, media_max_items: 5, custom_data_max_bytes: 1000, metadata_max_bytes: 1000, request_id_max_chars: 256 };
  closed = await startGateway(closedDir, testConfigDoc(closedDir, { egress: { allow: [] }, limits, server: { max_body_bytes: 20000 } }), freePort());
  open = await startGateway(openDir, testConfigDoc(openDir, { egress: { allow: ["127.0.0.1/32"] }, limits, media: { max_bytes: MEDIA_MAX }, server: { max_body_bytes: 20000 } }), freePort());
});
afterAll(async () => {
  await stopGateway(closed);
  await stopGateway(open);
  for (const s of servers) s.stop(true);
  sink?.stop();
});

let n = 0;
const mms = (over: Record<string, unknown> = {}) => ({
  to: `0013105${String(++n).padStart(4, "0")}50`, // ends in 50: no sandbox scenario (01–04)
  from: "18885551234",
  subject: "s",
  text: "t",
  fallback_text: "fb",
  request_id: `abuse-${n}`,
  callback_url: sink.url,
  ...over,
});

/**
 * The closed gateway refuses a loopback IP literal at intake, so its requests name the sink by
 * `localhost` (from /etc/hosts: no DNS query leaves the machine): accepted, and refused at send time.
 */
const closedCallback = () => sink.url.replace("127.0.0.1", "localhost");

type Row = { state: string; channel: string; fallback: number; last_error: string | null; history: string };
const row = (dir: string, id: string) => readDb(dir, (db) => db.query("SELECT state, channel, fallback, last_error, history FROM messages WHERE id = ?").get(id) as Row);
const final = (dir: string, id: string) => until(`message ${id} final`, () => ["delivered", "failed", "sent"].includes(row(dir, id).state) && row(dir, id), 20000);

test("egress.allow empty: loopback media and callback URLs in every spelling are refused; the servers saw nothing", async () => {
  const urls = [
    `http://127.0.0.1:${v4}/a.jpg`,
    `http://localhost:${v4}/a.jpg`,
    `http://[::1]:${v6}/a.jpg`,
    `http://127.1:${v4}/a.jpg`,
    `http://2130706433:${v4}/a.jpg`,
    `http://0x7f.0.0.1:${v4}/a.jpg`,
    `http://0.0.0.0:${v4}/a.jpg`,
    `http://[::ffff:127.0.0.1]:${v4}/a.jpg`,
    `http://127.0.0.2:${other127}/a.jpg`,
  ];
  const outcomes: string[] = [];
  for (const url of urls) {
    const a = await postJson(`${closed.url}/mms`, mms({ callback_url: closedCallback(), media: { url } }));
    // An IP literal (in any spelling the URL parser normalises) is refused at intake, naming the field;
    // a name is resolved only when the media is fetched, and refused then.
    if (new URL(url).hostname !== "localhost") {
      expect(a?.status).toBe(400);
      expect(a!.json.error).toMatchObject({ code: "invalid_field", field: "media.url" });
      outcomes.push("400 at intake");
      continue;
    }
    expect(a?.status).toBe(200);
    const m = await final(closedDir, a!.json.id);
    outcomes.push(`${m.state}/${m.channel}${m.fallback ? "(fallback)" : ""}`);
    expect(m.history).toContain("media:refused");
  }
  // A loopback callback URL: the event is dead-lettered as refused, never posted.
  const cb = await postJson(`${closed.url}/sms`, { ...mms({ callback_url: `http://localhost:${v4}/cb` }), subject: undefined, fallback_text: undefined });
  const dead = await until("refused callback dead-lettered", () =>
    readDb(closedDir, (db) => db.query("SELECT last_error FROM events WHERE message_id = ? AND state = 'dead'").get(cb!.json.id) as { last_error: string } | null),
  );
  summary(`fuzz: egress-closed urls=${urls.length} outcomes=${JSON.stringify(outcomes)} callback=${JSON.stringify(dead.last_error)} server_hits=${JSON.stringify(hits)}`);
  expect(dead.last_error).toContain("egress");
  expect(hits.v4 + hits.v6 + hits.other127).toBe(0);
}, 120000);

test("egress.allow = 127.0.0.1/32: redirects to 127.0.0.2 and [::1] are refused without connecting; the allowed host works", async () => {
  const before = { ...hits };
  const targets = [`http://127.0.0.2:${other127}/x.jpg`, `http://[::1]:${v6}/x.jpg`, `http://0.0.0.0:${v4}/x.jpg`];
  for (const t of targets) {
    const a = await postJson(`${open.url}/mms`, mms({ media: { url: `http://127.0.0.1:${redirector}/r?to=${encodeURIComponent(t)}` } }));
    const m = await final(openDir, a!.json.id);
    expect(m.history).toContain("media:refused");
  }
  const ok = await postJson(`${open.url}/mms`, mms({ media: { url: `http://127.0.0.1:${redirector}/r?to=${encodeURIComponent(`http://127.0.0.1:${mediaPort}/m.jpg?n=100`)}` } }));
  const m = await final(openDir, ok!.json.id);
  summary(`fuzz: egress-redirects refused=${targets.length} redirector_hits=${hits.redirector - before.redirector} hits_127.0.0.2=${hits.other127 - before.other127} hits_::1=${hits.v6 - before.v6} allowed_redirect=${m.state}/${m.channel}`);
  expect(hits.other127 - before.other127).toBe(0);
  expect(hits.v6 - before.v6).toBe(0);
  expect(hits.v4 - before.v4).toBe(0);
  expect(hits.redirector - before.redirector).toBe(4);
  expect(m).toMatchObject({ state: "delivered", channel: "mms" });
}, 60000);

test("redirect to cloud metadata (169.254.169.254, fd00:ec2::254, 10.0.0.1) refused before any connection (in-process, tripwire on fetch)", async () => {
  const { createEgress, EgressRefused } = await import("../../src/egress/fetch.ts");
  const realFetch = globalThis.fetch;
  const dialled: string[] = [];
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    const host = new URL(input instanceof Request ? input.url : String(input)).hostname;
    if (host !== "127.0.0.1" && host !== "[::1]") {
      dialled.push(host);
      return Promise.reject(new Error(`tripwire: refused to dial ${host}`));
    }
    return realFetch(input as string, init);
  }) as typeof fetch;
  const results: string[] = [];
  try {
    // No real DNS either (the system resolver is not on loopback): the metadata name resolves, as in a
    // cloud, to the metadata address, and must be refused after resolution without being dialled.
    const names: Record<string, string[]> = { "127.0.0.1": ["127.0.0.1"], "metadata.google.internal.": ["169.254.169.254"] };
    const egress = createEgress({
      allow: ["127.0.0.1/32"],
      resolve: async (host) => {
        const a = names[host];
        if (!a) throw new Error(`test resolver: ${host} is not a test name`);
        return a;
      },
    });
    for (const t of ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest/", "http://10.0.0.1/", "http://metadata.google.internal./x"]) {
      try {
        await egress.fetch(`http://127.0.0.1:${redirector}/r?to=${encodeURIComponent(t)}`, { timeoutMs: 3000, maxBytes: 1000, maxRedirects: 3 });
        results.push(`${t}: FETCHED`);
      } catch (e) {
        results.push(`${t}: ${e instanceof EgressRefused ? "refused" : (e as Error).name}`);
      }
    }
  } finally {
    globalThis.fetch = realFetch;
  }
  summary(`fuzz: egress-metadata-redirects ${JSON.stringify(results)} dialled_non_loopback=${dialled.length}`);
  expect(dialled).toEqual([]);
  for (const r of results.slice(0, 3)) expect(r).toEndWith("refused");
});

test("every size limit one byte over → 400 naming the field (413 for the body); at the limit → 200", async () => {
  const at = (k: string, v: unknown, path = "/mms") => postJson(`${closed.url}${path}`, mms({ callback_url: closedCallback(), [k]: v }));
  const cases: [string, unknown, unknown][] = [
    ["subject", "s".repeat(80), "s".repeat(81)],
    ["custom_data", "c".repeat(1000), "c".repeat(1001)],
    ["metadata", { m: "m".repeat(1000 - 8) }, { m: "m".repeat(1000 - 7) }],
    ["request_id", "r".repeat(256), "r".repeat(257)],
    // `localhost` comes from /etc/hosts (no DNS query leaves the machine) and is refused when fetched.
    ["media", Array.from({ length: 5 }, () => ({ url: "http://localhost:9/a.jpg" })), Array.from({ length: 6 }, () => ({ url: "http://localhost:9/a.jpg" }))],
  ];
  const lines: string[] = [];
  for (const [k, ok, over] of cases) {
    const a = await at(k, ok);
    const b = await at(k, over);
    lines.push(`${k}:${a?.status}/${b?.status}:${b?.json?.error?.field}`);
    expect(a?.status).toBe(200);
    expect(b?.status).toBe(400);
    expect(String(b?.json?.error?.field)).toStartWith(k);
  }
  // The whole body: exactly max_body_bytes passes the size check, one more is 413.
  const pad = (size: number) => {
    const base = JSON.stringify(mms({ text: "" }));
    return base.replace('"text":""', `"text":"${"x".repeat(size - base.length)}"`);
  };
  const bodyAt = await postJson(`${closed.url}/mms`, pad(20000));
  const bodyOver = await postJson(`${closed.url}/mms`, pad(20001));
  lines.push(`body:${bodyAt?.status}/${bodyOver?.status}`);
  expect(bodyAt?.status).not.toBe(413);
  expect(bodyOver?.status).toBe(413);
  // Media bytes: exactly media.max_bytes is sent as MMS, one more is refused (→ the fallback SMS).
  const mAt = await postJson(`${open.url}/mms`, mms({ media: { url: `http://127.0.0.1:${mediaPort}/a.jpg?n=${MEDIA_MAX}` } }));
  const mOver = await postJson(`${open.url}/mms`, mms({ media: { url: `http://127.0.0.1:${mediaPort}/b.jpg?n=${MEDIA_MAX + 1}` } }));
  const ra = await final(openDir, mAt!.json.id);
  const rb = await final(openDir, mOver!.json.id);
  lines.push(`media_bytes:${ra.channel}/${rb.channel}${rb.fallback ? "(fallback)" : ""}`);
  summary(`fuzz: size-limits ${lines.join(" ")}`);
  expect(ra.channel).toBe("mms");
  expect(rb.fallback).toBe(1);
}, 60000);

test("credential guessing: 30 failures per minute per address, then 429 with Retry-After (even for the right key)", async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 32; i++) statuses.push((await postJson(`${open.url}/sms`, { x: 1 }, { headers: { "Chan-Api-Key": `guess-${i}` } }))!.status);
  const right = await postJson(`${open.url}/sms`, { x: 1 });
  const verify = await fetch(`${open.url}/verify`, { headers: { "Chan-Api-Key": "guess" } });
  summary(`fuzz: guessing first_401s=${statuses.filter((s) => s === 401).length} then=${JSON.stringify(statuses.slice(30))} right_key_after=${right?.status} retry_after=${right?.headers.get("retry-after")} verify_after=${verify.status}`);
  expect(statuses.slice(0, 30).every((s) => s === 401)).toBe(true);
  expect(statuses.slice(30)).toEqual([429, 429]);
  expect(right?.status).toBe(429);
  expect(right?.headers.get("retry-after")).toMatch(/^\d+$/);
});
