// bench/profile: CPU profiles of the gateway (run from source with `bun --cpu-prof`) on its hot paths, each
// scenario in its own gateway process, and a summary of the top frames by self time and of chosen frames
// by inclusive time. Not part of `make bench` (it profiles, it does not measure throughput).
//   accept — POST /mms with wrk, 16 conn, delivery paused (the accept transaction, group commit)
//   mm7    — POST /mms with a 100 KB image → MMSC stub → DeliveryReportReq → webhook (SubmitReq building, outbox)
//   mm7-big — the same with the 3 MB photo of bench/media-adapt.ts (fetched and adapted by a first batch of 100)
//   sms    — POST /sms → SMPP simulator with receipts → webhook (SMPP session, receipts, outbox)
//   sms-paced — the same path paced at PROFILE_RATE msg/s (default 1,000) for PROFILE_N messages (default 10,000),
//            64 connections as in bench/kannel.ts: the steady load where small groups cost more per message
//   sms-alone — the same path one message at a time (the next sent once the previous callback arrived),
//            PROFILE_N messages (default 300): what each step costs when it runs alone
// Run: ./node_modules/.bin/bun bench/profile.ts [accept|mm7|mm7-big|sms|sms-paced …]   profiles land in .tmp/profiles/
// PROFILE=off runs the same scenarios without the profiler (its figures without the sampling overhead).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ACME_KEY, sendBody, testConfigDoc } from "../test/support/app.ts";
import { configFor, freePort } from "../test/support/binary.ts";
import { e2eRun } from "./lib/e2e.ts";
import { apiPost, sendScript, wrk } from "./lib/load.ts";
import { photoJpeg } from "./media-adapt.ts";
import { spawnHelper, startCountingSink, tempDir } from "./lib/processes.ts";
import { lockstep } from "./paced.ts";

const root = resolve(import.meta.dir, "..");
const outDir = join(root, ".tmp", "profiles");
mkdirSync(outDir, { recursive: true });
const profiling = process.env.PROFILE !== "off";
const INTERVAL_US = 250;
/** PROFILE_COLD=1: the profiled batch of mm7-big uses a new image (one fetch and adaptation inside the profile). */
const cold = process.env.PROFILE_COLD === "1";

async function startProfiled(name: string, overrides: Record<string, unknown>): Promise<{ url: string; port: number; pid: number; stop(): Promise<void> }> {
  const dir = tempDir();
  const port = freePort();
  const conf = configFor(dir, testConfigDoc(dir, { log: { level: "error" }, ...overrides }));
  const proc = Bun.spawn(
    [process.execPath, ...(profiling ? ["--cpu-prof", `--cpu-prof-dir=${outDir}`, `--cpu-prof-name=${name}.cpuprofile`, `--cpu-prof-interval=${INTERVAL_US}`] : []), join(root, "src/main.ts"), "serve", "--config", conf, "--listen", `127.0.0.1:${port}`],
    { stdout: "ignore", stderr: "inherit" },
  );
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 20000;
  for (;;) {
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) break;
    if (Date.now() > until || proc.exitCode !== null) throw new Error(`profiled gateway did not start`);
    await Bun.sleep(50);
  }
  return {
    url,
    port,
    pid: proc.pid,
    stop: async () => {
      proc.kill("SIGTERM");
      await Promise.race([proc.exited, Bun.sleep(15000).then(() => proc.kill("SIGKILL"))]);
    },
  };
}

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

function summarise(file: string, inclusiveOf: RegExp): void {
  const p = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n: Node) => `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/^.*\/(src|adapters|node_modules)\//, "$1/")}:${n.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  // Bun records no idle samples: the delta before a sample also spans any idle gap before it, which would
  // charge the wait to whatever ran next. A sample stands for at most one sampling interval of CPU.
  let busy = 0;
  p.samples.forEach((id, i) => {
    const dt = Math.min(p.timeDeltas[i] ?? 0, INTERVAL_US) / 1000;
    const n = byId.get(id)!;
    busy += dt;
    self.set(key(n), (self.get(key(n)) ?? 0) + dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + dt);
    }
  });
  console.log(`\n### ${file.split("/").pop()}: ${p.samples.length} samples, ${busy.toFixed(0)} ms of CPU (each sample ≤ ${INTERVAL_US} µs)`);
  console.log("top frames by self time (% of sampled CPU):");
  for (const [k, v] of [...self].filter(([k]) => !k.startsWith("(idle)") && !k.startsWith("(root)")).sort((a, b) => b[1] - a[1]).slice(0, 18)) console.log(`  ${((v / busy) * 100).toFixed(1).padStart(5)}%  ${v.toFixed(0).padStart(6)} ms  ${k}`);
  console.log("chosen frames by inclusive time:");
  for (const [k, v] of [...incl].filter(([k]) => inclusiveOf.test(k)).sort((a, b) => b[1] - a[1]).slice(0, 14)) console.log(`  ${((v / busy) * 100).toFixed(1).padStart(5)}%  ${v.toFixed(0).padStart(6)} ms  ${k}`);
}

const which = process.argv.slice(2).length ? process.argv.slice(2) : ["accept", "mm7", "sms"];
const interesting = /^(accept|write|flush|commit|claimDue|recordSubmit|applyReceipt|applyReceiptNow|pump|schedule|receipt|submit|buildSubmit|buildSubmitMessage|post|send|deliver|tick|round|handleInbound|fetch|sign|jwt|parse|onData|feed|encode|decode|JSON|handle|run) /i;

if (which.includes("accept")) {
  const gw = await startProfiled("accept", { delivery: { paused: true }, limits: { queue_high_water: 100_000_000 } });
  const lua = sendScript("/mms", { "Chan-Api-Key": ACME_KEY }, sendBody({ callback_url: "https://br.example/cb", media: { url: "https://cdn.example/img.jpg" } }));
  const r = await wrk(`${gw.url}/mms`, { connections: 16, seconds: 5, lua });
  console.log(`accept under profile: ${r.rps.toFixed(0)} req/s (profiler overhead included)`);
  await gw.stop();
}
async function profileMm7(name: string, big: boolean): Promise<void> {
  const sink = await startCountingSink();
  let env: Record<string, string> = {};
  if (big) {
    const path = join(tempDir(), "big.jpg");
    writeFileSync(path, await photoJpeg());
    env = { MMSC_BIG_IMAGE: path };
  }
  const mmsc = await spawnHelper("mmsc.ts", env);
  const stub = `http://127.0.0.1:${mmsc.port}`;
  const gw = await startProfiled(name, {
    carriers: { mms: { kind: "mm7", url: `${stub}/mm7`, vaspid: "V", vasid: "S", service_code: "SC", concurrency: 128, queue_limit: 100_000 } },
    // The stub MMSC posts its reports without credentials; both run on loopback only.
    inbound: { mm7: { allow_unauthenticated: true } },
    limits: { queue_high_water: 100_000_000 },
    webhooks: { batch_max_events: 100, batch_max_wait_ms: 5 },
  });
  await fetch(`${stub}/target?url=${encodeURIComponent(`${gw.url}/mm7`)}`).then((r) => r.text());
  const media = (prefix: string) => (big ? `${stub}/big.jpg?v=${cold ? prefix : "profile"}` : `${stub}/img.jpg`);
  const body = (prefix: string) => (i: number) =>
    apiPost("/mms", { to: "0012025550123", from: "12345", subject: "Sale", text: "50% off", media: [{ url: media(prefix), content_type: "image/jpeg" }], request_id: `${prefix}-${i}`, callback_url: sink.url });
  // A short first batch fetches (and for the 3 MB source adapts) the campaign image: the profile is then mostly per-message work.
  await e2eRun({ port: gw.port, sink, n: 100, connections: 16, request: body("warm"), key: (i) => `warm-${i}`, pids: [gw.pid], deadlineS: 60 });
  const r = await e2eRun({ port: gw.port, sink, n: 5000, connections: 64, request: body("prof"), key: (i) => `prof-${i}`, pids: [gw.pid], deadlineS: 60 });
  console.log(`${name} under profile: ${r.e2ePerS.toFixed(0)} MMS/s end to end, ${r.cpuPerMsg.toFixed(3)} CPU ms/msg${profiling ? " (profiler overhead included)" : " (no profiler)"}`);
  await gw.stop();
  await mmsc.stop();
  await sink.stop();
}
if (which.includes("mm7")) await profileMm7("mm7", false);
if (which.includes("mm7-big")) await profileMm7("mm7-big", true);
async function profileSms(name: string, n: number, rate?: number, alone = false): Promise<void> {
  const sink = await startCountingSink();
  const sim = await spawnHelper("smpp-smsc.ts", { SMSC_RECEIPTS: "1" });
  const gw = await startProfiled(name, {
    carriers: { sms: { kind: "smpp", host: "127.0.0.1", port: sim.port, system_id: "gw", password: "pw", window: 500, tps: 0, concurrency: 1000 } },
    limits: { queue_high_water: 100_000_000 },
    webhooks: { batch_max_events: 100, batch_max_wait_ms: 5 },
  });
  const body = (i: number) => apiPost("/sms", { to: "0012025550123", from: "12345", text: "Benchmark message", request_id: `prof-${i}`, callback_url: sink.url });
  const overhead = profiling ? " (profiler overhead included)" : " (no profiler)";
  if (alone) {
    const t0 = Date.now();
    const cpu = await lockstep(gw.url, gw.pid, sink, n, "prof-");
    console.log(`${name}: ${n} messages one at a time in ${Date.now() - t0} ms, ${cpu.toFixed(3)} CPU ms/msg${overhead}`);
  } else {
    const r = await e2eRun({ port: gw.port, sink, n, connections: 64, rate, request: body, key: (i) => `prof-${i}`, pids: [gw.pid], deadlineS: rate ? Math.ceil(n / rate) + 60 : 60 });
    console.log(`${name}: ${r.e2ePerS.toFixed(0)} msg/s end to end, ${r.cpuPerMsg.toFixed(3)} CPU ms/msg, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms${overhead}`);
  }
  await gw.stop();
  await sim.stop();
  await sink.stop();
}
if (which.includes("sms")) await profileSms("sms", 10000);
if (which.includes("sms-paced")) await profileSms("sms-paced", Number(process.env.PROFILE_N ?? 10000), Number(process.env.PROFILE_RATE ?? 1000));
if (which.includes("sms-alone")) await profileSms("sms-alone", Number(process.env.PROFILE_N ?? 300), undefined, true);

if (profiling) for (const f of readdirSync(outDir).filter((f) => which.some((w) => f === `${w}.cpuprofile`))) summarise(join(outDir, f), interesting);
