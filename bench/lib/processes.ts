// What a benchmark runs beside itself, each in its own process: the compiled gateway, the bare-server
// ceiling, helper scripts (sink, simulators, stubs); and what /proc and /metrics say about them.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { testConfigDoc } from "../../test/support/app.ts";
import { configFor, freePort, startBinary, type Running } from "../../test/support/binary.ts";

/** bench/, where the helper scripts are. */
const benchDir = resolve(import.meta.dir, "..");

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

export function cpuMsOf(pids: number[]): number {
  return pids.reduce((a, p) => a + cpuMs(p), 0);
}

/** A helper script (sink, simulator, stub) in its own process: it prints {"port":N} on its first line. */
export async function spawnHelper(script: string, env: Record<string, string> = {}): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const proc = Bun.spawn([process.execPath, join(benchDir, script)], { stdout: "pipe", stderr: "inherit", env: { ...process.env, ...env } });
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
