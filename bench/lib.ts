// Shared by the benchmarks: start the compiled gateway or a ceiling server as its own process, drive
// load with wrk (C, cheap, so it leaves the CPU to what is measured), and summarise runs.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { configFor, freePort, startBinary, type Running } from "../test/support/binary.ts";
import { ACME_KEY, testConfigDoc } from "../test/support/app.ts";

export const root = resolve(import.meta.dir, "..");

export function tempDir(prefix = "gw-bench-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startGateway(
  overrides: Record<string, unknown> = {},
  opts: { dir?: string; port?: number } = {},
): Promise<Running & { dir: string; port: number; stop(): Promise<void> }> {
  const dir = opts.dir ?? tempDir();
  const port = opts.port ?? freePort();
  const doc = testConfigDoc(dir, { log: { level: "error" }, ...overrides });
  const gw = await startBinary(configFor(dir, doc), port);
  return Object.assign(gw, {
    dir,
    port,
    async stop() {
      gw.proc.kill("SIGTERM");
      await gw.proc.exited;
    },
  });
}

/** The ceiling: a bare Bun.serve answering a constant 200, in its own process like the gateway. */
export async function startCeiling(): Promise<{ url: string; proc: Subprocess; stop(): Promise<void> }> {
  const port = freePort();
  const script = join(tempDir(), "ceiling.ts");
  writeFileSync(
    script,
    `Bun.serve({ hostname: "127.0.0.1", port: ${port}, async fetch(r) { await r.text(); return new Response('{"status":"accepted"}', { headers: { "content-type": "application/json" } }); } });`,
  );
  const proc = Bun.spawn([process.execPath, script], { stdout: "ignore", stderr: "inherit" });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (await fetch(url).then(() => true, () => false)) break;
    await Bun.sleep(25);
  }
  return { url, proc, stop: async () => (proc.kill(), void (await proc.exited)) };
}

export interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
}

/** wrk with a Lua script that gives every request a unique request_id. */
export async function wrk(url: string, o: { connections: number; seconds: number; threads?: number; lua?: string }): Promise<WrkResult> {
  const args = ["wrk", `-t${o.threads ?? Math.min(2, o.connections)}`, `-c${o.connections}`, `-d${o.seconds}s`, "--latency"];
  if (o.lua) args.push("-s", o.lua);
  args.push(url);
  const p = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe" });
  const out = p.stdout.toString();
  if (p.exitCode !== 0) throw new Error(`wrk failed: ${p.stderr.toString()}`);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? "NaN");
  const ms = (label: string) => {
    const m = new RegExp(`^\\s+${label}%\\s+([\\d.]+)(us|ms|s)`, "m").exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: ms("50"),
    p99: ms("99"),
    requests: num(/(\d+) requests in/),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

/** A wrk script: POST the body with a request_id unique across threads and runs. */
export function sendScript(path: string, headers: Record<string, string>, body: Record<string, unknown>): string {
  const file = join(tempDir(), "send.lua");
  const json = JSON.stringify({ ...body, request_id: "RID" });
  const lua = `
local counter = 0
local prefix = ""
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init(args) prefix = tostring(tid) .. "-" .. tostring(os.time()) .. "-" .. tostring(math.random(1, 1e9)) .. "-" end
wrk.method = "POST"
wrk.path = ${JSON.stringify(path)}
${Object.entries({ "content-type": "application/json", ...headers })
  .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
  .join("\n")}
local template = ${JSON.stringify(json)}
function request()
  counter = counter + 1
  local body = string.gsub(template, "RID", prefix .. counter, 1)
  return wrk.format(nil, nil, nil, body)
end
`;
  writeFileSync(file, lua);
  return file;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** "median (min–max)" of several runs. */
export function spread(xs: number[], digits = 0): string {
  const f = (x: number) => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

/** CPU milliseconds (user + system) a process has used, from /proc. */
export function cpuMs(pid: number): number {
  const stat = require("node:fs").readFileSync(`/proc/${pid}/stat`, "utf8") as string;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

export function rssMb(pid: number): number {
  const status = require("node:fs").readFileSync(`/proc/${pid}/status`, "utf8") as string;
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

// ---- helpers for the end-to-end benchmarks -------------------------------------------------------

export const quick = process.env.BENCH_QUICK === "1";

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** A helper script (sink, simulator, stub) in its own process: it prints {"port":N} on its first line. */
export async function spawnHelper(script: string, env: Record<string, string> = {}): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, script)], { stdout: "pipe", stderr: "inherit", env: { ...process.env, ...env } });
  const reader = proc.stdout.getReader();
  let text = "";
  const until = Date.now() + 15000;
  while (!text.includes("\n")) {
    if (Date.now() > until) throw new Error(`${script} did not start`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`${script} exited`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return {
    port: JSON.parse(text.split("\n")[0]!).port,
    pid: proc.pid,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

export interface SinkHandle {
  url: string;
  pid: number;
  /** `events` are distinct (by event_id); `redelivered` counts the repeats. */
  stats(): Promise<{ events: number; redelivered: number; posts: number; first: number; last: number; noAuth: number }>;
  times(): Promise<Record<string, number>>;
  reset(): Promise<void>;
  /** Waits (bounded) until `n` events have arrived or nothing new came for `idleMs`. */
  waitFor(n: number, timeoutMs: number, idleMs?: number): Promise<{ events: number; first: number; last: number }>;
  stop(): Promise<void>;
}

export async function startCountingSink(): Promise<SinkHandle> {
  const h = await spawnHelper("sink.ts");
  const base = `http://127.0.0.1:${h.port}`;
  const sink: SinkHandle = {
    url: `${base}/callback`,
    pid: h.pid,
    stats: async () => (await fetch(`${base}/stats`)).json() as never,
    times: async () => (await fetch(`${base}/times`)).json() as never,
    reset: async () => void (await fetch(`${base}/reset`, { method: "POST" }).then((r) => r.text())),
    async waitFor(n, timeoutMs, idleMs = 10_000) {
      const until = Date.now() + timeoutMs;
      let lastCount = -1;
      let lastChange = Date.now();
      for (;;) {
        const s = await sink.stats();
        if (s.events >= n) return s;
        if (s.events !== lastCount) (lastCount = s.events), (lastChange = Date.now());
        if (Date.now() > until || Date.now() - lastChange > idleMs) return s;
        await Bun.sleep(20);
      }
    },
    stop: h.stop,
  };
  return sink;
}

export const nowMs = () => performance.timeOrigin + performance.now();

/** One keep-alive HTTP/1.1 connection on a raw socket: one request at a time, Content-Length or chunked answers. */
class RawConn {
  private buf = Buffer.alloc(0);
  private waiting: ((status: number) => void) | null = null;
  private failed: ((e: Error) => void) | null = null;
  private constructor(private socket: import("bun").Socket<undefined>) {}

  static async open(host: string, port: number): Promise<RawConn> {
    let conn!: RawConn;
    const socket = await Bun.connect({
      hostname: host,
      port,
      socket: {
        data: (_s, chunk) => conn.onData(chunk),
        close: () => conn?.failed?.(new Error("connection closed")),
        error: (_s, e) => conn?.failed?.(e),
      },
    });
    socket.setNoDelay?.(true);
    conn = new RawConn(socket);
    return conn;
  }

  request(bytes: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failed = reject;
      this.socket.write(bytes);
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    for (;;) {
      const head = this.buf.indexOf("\r\n\r\n");
      if (head < 0) return;
      const headers = this.buf.toString("latin1", 0, head).toLowerCase();
      const status = Number(headers.slice(9, 12));
      const cl = /content-length:\s*(\d+)/.exec(headers);
      let end: number;
      if (cl) {
        end = head + 4 + Number(cl[1]);
        if (this.buf.length < end) return;
      } else if (headers.includes("transfer-encoding: chunked")) {
        const z = this.buf.indexOf("\r\n0\r\n\r\n", head);
        if (z < 0) return;
        end = z + 7;
      } else {
        end = head + 4;
      }
      this.buf = this.buf.subarray(end);
      const w = this.waiting;
      this.waiting = null;
      w?.(status);
    }
  }

  close(): void {
    this.failed = null;
    this.socket.end();
  }
}

export interface LoadResult {
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** Send time of request i (ms, performance.timeOrigin-based); NaN if not sent. */
  sendTimes: Float64Array;
  /** Seconds from the first send to the last answer. */
  elapsed: number;
  answerLatencies: number[];
}

/**
 * Sends `n` requests over `connections` keep-alive connections, paced at `rate` per second if given,
 * and stops at `n` or at `deadlineS`, whichever comes first. `request(i)` gives the raw HTTP/1.1 bytes.
 */
export async function rawLoad(o: { host?: string; port: number; n: number; connections: number; rate?: number; deadlineS: number; request: (i: number) => string }): Promise<LoadResult> {
  const conns = await Promise.all(Array.from({ length: o.connections }, () => RawConn.open(o.host ?? "127.0.0.1", o.port)));
  const sendTimes = new Float64Array(o.n).fill(NaN);
  const answerLatencies: number[] = [];
  let next = 0;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  const t0 = nowMs();
  const deadline = t0 + o.deadlineS * 1000;
  let lastAnswer = t0;
  const worker = async (c: RawConn) => {
    for (;;) {
      const i = next++;
      if (i >= o.n) return;
      if (o.rate) {
        const at = t0 + (i * 1000) / o.rate;
        const wait = at - nowMs();
        if (wait > 1) await Bun.sleep(wait);
      }
      const s = nowMs();
      if (s > deadline) return;
      sendTimes[i] = s;
      try {
        const status = await c.request(o.request(i));
        if (status >= 200 && status < 300) ok++;
        else non2xx++;
      } catch {
        errors++;
        return;
      }
      lastAnswer = nowMs();
      answerLatencies.push(lastAnswer - s);
    }
  };
  await Promise.all(conns.map(worker));
  for (const c of conns) c.close();
  return { sent: Math.min(next, o.n), ok, non2xx, errors, sendTimes, elapsed: (lastAnswer - t0) / 1000, answerLatencies };
}

export function rawPost(path: string, headers: Record<string, string>, body: string): string {
  const h = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${h}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** A Channel API send (/mms or /sms) as the acme tenant, as raw HTTP/1.1 bytes. */
export function apiPost(path: "/mms" | "/sms", body: object): string {
  return rawPost(path, { "Chan-Api-Key": ACME_KEY }, JSON.stringify(body));
}

export function rawGet(pathAndQuery: string): string {
  return `GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
}

/** request → callback latencies (ms, sorted) for keys `key(i)` of the sent requests. */
export function callbackLatencies(load: LoadResult, times: Record<string, number>, key: (i: number) => string): number[] {
  const out: number[] = [];
  for (let i = 0; i < load.sendTimes.length; i++) {
    const s = load.sendTimes[i]!;
    const t = times[key(i)];
    if (!Number.isNaN(s) && t !== undefined) out.push(t - s);
  }
  return out.sort((a, b) => a - b);
}

export function cpuMsOf(pids: number[]): number {
  return pids.reduce((a, p) => a + cpuMs(p), 0);
}

export function machine(): Record<string, string> {
  const fs = require("node:fs") as typeof import("node:fs");
  const model = /model name\s*:\s*(.*)/.exec(fs.readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  const mem = Number(/MemTotal:\s+(\d+)/.exec(fs.readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0);
  const load = fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  return {
    cpus: String(require("node:os").cpus().length),
    model,
    memory: `${(mem / 1024 / 1024).toFixed(1)} GiB`,
    kernel: fs.readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(),
    bun: Bun.version,
    date: new Date().toISOString(),
    loadavg: load,
  };
}

/** A gateway figure beside its ceiling: one table row. */
export interface Row {
  bench: string;
  figure: string;
  gateway: string;
  ceiling: string;
  ratio: string;
  target: string;
}

export interface E2eResult {
  sent: number;
  accepted: number;
  non2xx: number;
  /** Accepted requests per second (first send → last answer). */
  acceptPerS: number;
  /** Callbacks per second, first send → last callback. */
  e2ePerS: number;
  /** Callback events per second while they were arriving (first → last callback). */
  eventsPerS: number;
  events: number;
  posts: number;
  /** request → callback, ms. */
  p50: number;
  p99: number;
  /** CPU ms per message of `pids` over the whole run (first send → last callback). */
  cpuPerMsg: number;
}

/**
 * One end-to-end run: `n` requests (paced at `rate`/s if given) over `connections` keep-alive
 * connections, then waits (bounded) for their callbacks at the sink.
 */
export async function e2eRun(o: {
  port: number;
  sink: SinkHandle;
  n: number;
  connections: number;
  rate?: number;
  request: (i: number) => string;
  key: (i: number) => string;
  pids: number[];
  deadlineS?: number;
}): Promise<E2eResult> {
  await o.sink.reset();
  const cpu0 = cpuMsOf(o.pids);
  const load = await rawLoad({ port: o.port, n: o.n, connections: o.connections, rate: o.rate, deadlineS: o.deadlineS ?? 120, request: o.request });
  const s = await o.sink.waitFor(load.ok, (o.deadlineS ?? 120) * 1000, 10_000);
  const cpu1 = cpuMsOf(o.pids);
  const t0 = load.sendTimes[0]!;
  const lat = callbackLatencies(load, await o.sink.times(), o.key);
  const st = await o.sink.stats();
  // Every accepted request must have its callback: a run that lost some has no honest figures.
  if (lat.length < load.ok) throw new Error(`lost callbacks: ${load.ok - lat.length} of ${load.ok} accepted requests got none (${st.events} distinct events, ${st.redelivered} redelivered)`);
  return {
    sent: load.sent,
    accepted: load.ok,
    non2xx: load.non2xx + load.errors,
    acceptPerS: load.ok / load.elapsed,
    e2ePerS: s.events / ((s.last - t0) / 1000),
    eventsPerS: s.events / Math.max(0.001, (s.last - s.first) / 1000),
    events: s.events,
    posts: st.posts,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    cpuPerMsg: (cpu1 - cpu0) / Math.max(1, s.events),
  };
}

/** The HTTP ceiling for the raw client: the bare server, the same client, the same connections. */
export async function rawCeiling(url: string, n: number, connections: number, request: (i: number) => string): Promise<number> {
  const port = Number(new URL(url).port);
  const r = await rawLoad({ port, n, connections, deadlineS: 30, request });
  return r.ok / r.elapsed;
}

export function fmtN(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a";
}

export function ratios(a: number[], b: number[]): number[] {
  return a.map((x, i) => x / b[i]!);
}

export function printRows(rows: Row[]): void {
  const head: Row = { bench: "benchmark", figure: "figure", gateway: "gateway: median (min–max)", ceiling: "ceiling / baseline: median (min–max)", ratio: "ratio", target: "target" };
  const all = [head, ...rows];
  const keys = Object.keys(head) as (keyof Row)[];
  const w = keys.map((k) => Math.max(...all.map((r) => r[k].length)));
  const line = (r: Row) => `| ${keys.map((k, i) => r[k].padEnd(w[i]!)).join(" | ")} |`;
  console.log(line(head));
  console.log(`|${w.map((x) => "-".repeat(x + 2)).join("|")}|`);
  for (const r of rows) console.log(line(r));
}

/** The sum of a counter's samples at the gateway's /metrics whose labels contain `labels` (e.g. `carrier="sms_b"`). */
export async function metricSum(gatewayUrl: string, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`${gatewayUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels && !line.slice(0, line.lastIndexOf(" ")).includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}
