// bench/syscalls: the gateway binary's system calls per message, SMS sent one at a time (each after the previous
// callback, so every step runs alone), counted by `strace -c -f` over all its threads. Unlike CPU time these
// counts hardly move with the machine's load: fdatasync per message is the commits a message costs, pwrite64
// the WAL frames and the checkpointer's copies, fcntl SQLite's locks. Not part of `make bench` (needs strace).
// Usage: bun bench/syscalls.ts [BINARY (default dist/mms-gateway)] [N (default 200)]
import { join } from "node:path";
import { ACME_KEY, testConfigDoc } from "../test/support/app.ts";
import { configFor, freePort } from "../test/support/binary.ts";
import { spawnHelper, startCountingSink, tempDir } from "./lib/processes.ts";

const bin = process.argv[2] ?? join(import.meta.dir, "../dist/mms-gateway");
const n = Number(process.argv[3] ?? 200);
const WARMUP = 50;
if (Bun.spawnSync(["strace", "-V"], { stdout: "ignore", stderr: "ignore" }).exitCode !== 0) {
  console.error("bench/syscalls: strace is not installed");
  process.exit(2);
}

const sink = await startCountingSink();
const sim = await spawnHelper("smpp-smsc.ts", { SMSC_RECEIPTS: "1" });
const dir = tempDir();
const port = freePort();
const conf = configFor(
  dir,
  testConfigDoc(dir, {
    log: { level: "error" },
    carriers: { sms: { kind: "smpp", host: "127.0.0.1", port: sim.port, system_id: "gw", password: "pw", window: 500, tps: 0, concurrency: 1000 } },
    limits: { queue_high_water: 100_000_000 },
    webhooks: { batch_max_events: 100, batch_max_wait_ms: 5 },
  }),
);
const gw = Bun.spawn([bin, "serve", "--config", conf, "--listen", `127.0.0.1:${port}`], { stdout: "ignore", stderr: "inherit" });
const url = `http://127.0.0.1:${port}`;
try {
  const until = Date.now() + 20_000;
  while (!(await fetch(`${url}/healthz`).then((r) => r.ok, () => false))) {
    if (Date.now() > until) throw new Error("the gateway did not start");
    await Bun.sleep(25);
  }
  let sent = 0;
  const one = async (tag: string) => {
    const body = JSON.stringify({ to: "0012025550123", from: "12345", text: "Benchmark message", request_id: `${tag}${sent}`, callback_url: sink.url });
    const r = await fetch(`${url}/sms`, { method: "POST", headers: { "Chan-Api-Key": ACME_KEY, "content-type": "application/json" }, body });
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    await r.arrayBuffer();
    sent++;
    const deadline = Date.now() + 30_000;
    while ((await sink.stats()).events < sent) {
      if (Date.now() > deadline) throw new Error(`no callback for message ${sent}`);
      await Bun.sleep(1);
    }
  };
  for (let i = 0; i < WARMUP; i++) await one("w");
  const out = join(dir, "strace.txt");
  const strace = Bun.spawn(["strace", "-c", "-f", "-o", out, "-p", String(gw.pid)], { stderr: "ignore" });
  await Bun.sleep(1000);
  const t0 = Date.now();
  for (let i = 0; i < n; i++) await one("m");
  const seconds = (Date.now() - t0) / 1000;
  strace.kill("SIGINT");
  await strace.exited;
  console.log(`${bin}: ${n} SMS one at a time in ${seconds.toFixed(1)} s (the count includes ~${(seconds + 1).toFixed(0)} s of idle timers)`);
  for (const line of (await Bun.file(out).text()).split("\n")) {
    const f = line.trim().split(/\s+/);
    const calls = Number(f[3]);
    const name = f.at(-1)!;
    if (Number.isFinite(calls) && calls > 0 && /^(fdatasync|fsync|pwrite64|pread64|fcntl|write|sendto|recvfrom|futex|epoll_pwait2?|total)$/.test(name)) console.log(`  ${name.padEnd(12)} ${(calls / n).toFixed(2)} per message`);
  }
} finally {
  gw.kill("SIGTERM");
  await gw.exited;
  await sim.stop();
  await sink.stop();
}
