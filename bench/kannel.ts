// bench/kannel: the same SMS job through Kannel (Debian's bearerbox + smsbox, tuned as in
// ../shared/kannel-baseline.md) and through the gateway's POST /sms, in one run:
//   HTTP send → stored → submit_sm to the node-smpp simulator (answers at once, then a DELIVRD receipt with
//   TLVs on the same transceiver session) → receipt matched → HTTP callback to the counting sink.
// Each system gets its own simulator process (the simulator spreads receipts over every bound session).
// Per system: a burst of N over 64 keep-alive connections (accept/s, end-to-end msg/s, CPU ms per message of
// the system's own processes, latency) and a paced run at 1,000 msg/s (latency without backlog).
// Kannel is installed with apt-get when missing and we are root; otherwise its side is skipped.
// Run: ./node_modules/.bin/bun bench/kannel.ts   (BENCH_QUICK=1 for a short run)
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "../test/support/binary.ts";
import { type E2eResult, e2eRun } from "./lib/e2e.ts";
import { fmtN, quick, type Row, spread } from "./lib/figures.ts";
import { apiPost, rawGet } from "./lib/load.ts";
import { type SinkHandle, spawnHelper, startCountingSink, startGateway, tempDir } from "./lib/processes.ts";

const N = Number(process.env.BENCH_KANNEL_N ?? (quick ? 4000 : 20_000));
const PACED_RATE = 1000;
const PACED_N = Number(process.env.BENCH_PACED_N ?? (quick ? 2000 : 5000));
const runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3));
const CONNECTIONS = 64;
const TEXT = "Benchmark message, GSM 7-bit, nothing fancy.";

function haveKannel(): boolean {
  return existsSync("/usr/sbin/bearerbox") && existsSync("/usr/sbin/smsbox");
}

/** Installs Debian's kannel if missing and we are root; returns why not otherwise. */
/** The installed Debian package's version, e.g. "1.4.5-13" (null when not installed). */
export function kannelVersion(): string | null {
  const q = Bun.spawnSync(["dpkg-query", "-W", "-f=${Version}", "kannel"], { stdout: "pipe", stderr: "ignore" });
  const v = q.stdout.toString().trim();
  return q.exitCode === 0 && v ? v : null;
}

export function ensureKannel(): string | null {
  if (haveKannel()) return null;
  if (process.getuid?.() !== 0) return "kannel is not installed and this is not root: run `apt-get install -y kannel` to include it";
  console.error("installing kannel (apt-get update && apt-get install -y kannel) …");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const upd = Bun.spawnSync(["apt-get", "update", "-qq"], { env, stdout: "ignore", stderr: "pipe", timeout: 300_000 });
  const inst = Bun.spawnSync(["apt-get", "install", "-y", "-qq", "kannel"], { env, stdout: "ignore", stderr: "pipe", timeout: 600_000 });
  if (!haveKannel()) return `apt-get install kannel failed: ${upd.stderr.toString().slice(-300)} ${inst.stderr.toString().slice(-300)}`;
  return null;
}

interface Kannel {
  sendPort: number;
  pids: number[];
  stop(): Promise<void>;
}

async function startKannel(simPort: number): Promise<Kannel> {
  const dir = tempDir("kannel-bench-");
  mkdirSync(join(dir, "store"), { recursive: true });
  const admin = freePort();
  const box = freePort();
  const send = freePort();
  const conf = join(dir, "kannel.conf");
  // Tuned as in kannel-baseline.md: max-pending-submits 500, errors-only logs, file store, transceiver, msg-id-type 0x00.
  writeFileSync(
    conf,
    `group = core
admin-port = ${admin}
admin-interface = 127.0.0.1
admin-password = bench
admin-allow-ip = 127.0.0.1
smsbox-port = ${box}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "${dir}/bearerbox.log"
log-level = 3
store-type = file
store-location = "${dir}/store/kannel.store"
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = ${simPort}
receive-port = 0
transceiver-mode = true
smsc-username = kannel
smsc-password = pw
system-type = ""
max-pending-submits = 500
msg-id-type = 0x00
log-level = 3

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = ${box}
sendsms-port = ${send}
sendsms-interface = 127.0.0.1
log-file = "${dir}/smsbox.log"
log-level = 3

group = sendsms-user
username = bench
password = bench
max-messages = 1

group = sms-service
keyword = default
text = "ok"
`,
  );
  const procs: Subprocess[] = [];
  const spawn = (bin: string) => {
    const p = Bun.spawn([bin, conf], { stdout: "ignore", stderr: "ignore" });
    procs.push(p);
    return p;
  };
  const stop = async () => {
    for (const p of procs.reverse()) p.kill("SIGTERM");
    const t = Bun.sleep(5000).then(() => procs.forEach((p) => p.exitCode === null && p.kill("SIGKILL")));
    await Promise.race([Promise.all(procs.map((p) => p.exited)), t]);
    await Promise.all(procs.map((p) => p.exited));
  };
  try {
    spawn("/usr/sbin/bearerbox");
    await waitUntil("bearerbox admin", 20_000, async () => (await fetch(`http://127.0.0.1:${admin}/status.txt?password=bench`)).ok);
    spawn("/usr/sbin/smsbox");
    await waitUntil("smsc bound and smsbox connected", 30_000, async () => {
      const s = await (await fetch(`http://127.0.0.1:${admin}/status.txt?password=bench`)).text();
      return /online/.test(s.split("SMSC connections")[1] ?? "") && /smsbox:/.test(s) && !/smsbox:\s*\n\s*$/.test(s);
    });
    await waitUntil("smsbox sendsms port", 20_000, async () => (await fetch(`http://127.0.0.1:${send}/cgi-bin/sendsms`)).status > 0);
  } catch (e) {
    await stop();
    throw e;
  }
  return { sendPort: send, pids: procs.map((p) => p.pid), stop };
}

async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`kannel: timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

interface Side {
  name: string;
  port: number;
  pids: number[];
  request: (tag: string, i: number) => string;
}

async function measure(side: Side, sink: SinkHandle, run: number): Promise<{ burst: E2eResult; paced: E2eResult }> {
  const tag = `${side.name[0]}${run}-${Date.now().toString(36)}-`;
  const burst = await e2eRun({ port: side.port, sink, n: N, connections: CONNECTIONS, request: (i) => side.request(tag, i), key: (i) => tag + i, pids: side.pids });
  const ptag = `${tag}p-`;
  const paced = await e2eRun({ port: side.port, sink, n: PACED_N, connections: CONNECTIONS, rate: PACED_RATE, request: (i) => side.request(ptag, i), key: (i) => ptag + i, pids: side.pids });
  for (const [k, r] of [["burst", burst], ["paced", paced]] as const) {
    console.error(
      `${side.name} run ${run} ${k}: accept ${fmtN(r.acceptPerS)}/s, e2e ${fmtN(r.e2ePerS)} msg/s, callbacks ${r.events}/${r.accepted} (${r.non2xx} non-2xx), p50 ${fmtN(r.p50)} ms p99 ${fmtN(r.p99)} ms, ${r.cpuPerMsg.toFixed(3)} CPU ms/msg`,
    );
  }
  return { burst, paced };
}

export async function benchKannel(): Promise<Row[]> {
  const skip = ensureKannel();
  if (skip) console.error(`kannel: SKIPPED — ${skip}`);
  const sink = await startCountingSink();
  const simG = await spawnHelper("smpp-smsc.ts", { SMSC_RECEIPTS: "1" });
  const gw = await startGateway({
    carriers: { sms: { kind: "smpp", host: "127.0.0.1", port: simG.port, system_id: "gw", password: "pw", window: 500, tps: 0, concurrency: 1000 } },
    limits: { queue_high_water: 100_000_000 },
    webhooks: { batch_max_events: 100, batch_max_wait_ms: 5 },
  });
  let simK: Awaited<ReturnType<typeof spawnHelper>> | null = null;
  let kannel: Kannel | null = null;
  const results = new Map<string, { burst: E2eResult; paced: E2eResult }[]>([["gateway", []], ["kannel", []]]);
  try {
    if (!skip) {
      simK = await spawnHelper("smpp-smsc.ts", { SMSC_RECEIPTS: "1" });
      kannel = await startKannel(simK.port);
    }
    const sides: Side[] = [
      {
        name: "gateway",
        port: gw.port,
        pids: [gw.proc.pid],
        request: (tag, i) =>
          apiPost("/sms", { to: "0012025550123", from: "12345", text: TEXT, request_id: tag + i, custom_data: `cd=${i}`, callback_url: sink.url }),
      },
    ];
    if (kannel) {
      const k = kannel;
      const sinkBase = sink.url.replace(/\/callback$/, "");
      const text = encodeURIComponent(TEXT);
      sides.push({
        name: "kannel",
        port: k.sendPort,
        pids: k.pids,
        request: (tag, i) =>
          rawGet(
            `/cgi-bin/sendsms?username=bench&password=bench&from=12345&to=12025550123&text=${text}&dlr-mask=3&dlr-url=${encodeURIComponent(`${sinkBase}/dlr?id=${tag}${i}&type=%d`)}`,
          ),
      });
    }
    // Alternate the systems run by run so drift in the machine's load hits both alike.
    for (let run = 0; run < runs; run++) for (const side of sides) results.get(side.name)!.push(await measure(side, sink, run));
  } finally {
    await kannel?.stop();
    await gw.stop();
    await simK?.stop();
    await simG.stop();
    await sink.stop();
  }
  const g = results.get("gateway")!;
  const k = results.get("kannel")!;
  const col = (rs: { burst: E2eResult; paced: E2eResult }[], f: (r: { burst: E2eResult; paced: E2eResult }) => number, d = 0) => (rs.length ? spread(rs.map(f), d) : "skipped");
  const rat = (f: (r: { burst: E2eResult; paced: E2eResult }) => number, d = 2) => (k.length ? spread(g.map((x, i) => f(x) / f(k[i]!)), d) : "");
  const label = `SMS vs Kannel ${kannelVersion() ?? "(not installed)"}, ${fmtN(N)} burst / ${fmtN(PACED_N)} paced`;
  const lat = (rs: { burst: E2eResult; paced: E2eResult }[], which: "burst" | "paced") =>
    rs.length ? `${spread(rs.map((r) => r[which].p50))} / ${spread(rs.map((r) => r[which].p99))}` : "skipped";
  return [
    { bench: label, figure: "accept/s (burst, 64 conn)", gateway: col(g, (r) => r.burst.acceptPerS), ceiling: col(k, (r) => r.burst.acceptPerS), ratio: rat((r) => r.burst.acceptPerS), target: "" },
    { bench: label, figure: "end to end msg/s (POST /sms → submit_sm → receipt → webhook)", gateway: col(g, (r) => r.burst.e2ePerS), ceiling: col(k, (r) => r.burst.e2ePerS), ratio: rat((r) => r.burst.e2ePerS), target: "≥ Kannel" },
    { bench: label, figure: "CPU ms per message, own processes (burst)", gateway: col(g, (r) => r.burst.cpuPerMsg, 3), ceiling: col(k, (r) => r.burst.cpuPerMsg, 3), ratio: rat((r) => r.burst.cpuPerMsg), target: "≤ Kannel" },
    { bench: label, figure: "latency request → callback p50 / p99 ms, burst", gateway: lat(g, "burst"), ceiling: lat(k, "burst"), ratio: "", target: "" },
    // The target speaks of p99: the ratio is gateway p99 ÷ Kannel p99, run by run.
    { bench: label, figure: `latency request → callback p50 / p99 ms, paced ${fmtN(PACED_RATE)}/s (ratio: p99)`, gateway: lat(g, "paced"), ceiling: lat(k, "paced"), ratio: rat((r) => r.paced.p99), target: "p99 ≤ Kannel" },
    { bench: label, figure: "CPU ms per message, own processes (paced)", gateway: col(g, (r) => r.paced.cpuPerMsg, 3), ceiling: col(k, (r) => r.paced.cpuPerMsg, 3), ratio: rat((r) => r.paced.cpuPerMsg), target: "" },
  ];
}

if (import.meta.main) {
  const { printRows } = await import("./lib/figures.ts");
  printRows(await benchKannel());
}
