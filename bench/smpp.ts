// submit_sm/s over one bind at window 1, 10 and 50 against the node-smpp simulator in a separate
// process, plus the simulator's own ceiling measured with a bare pipelining client (no session layer).
// Usage: bun bench/smpp.ts [messages per run, default 20000] [seconds cap per run, default 10]
// (bench/run.ts calls benchSmpp(), which adds the bare client at every window as that window's ceiling.)

import net from "node:net";
import { createSmppCarrier } from "../adapters/smpp/smpp-carrier.ts";
import { percentile, quick, type Row, spread } from "./lib/figures.ts";
import { spawnHelper } from "./lib/processes.ts";
import { Command, type ShortMessageFields } from "../adapters/smpp/pdu.ts";
import { FrameReader } from "../adapters/smpp/pdu-decode.ts";
import { encodeBind, encodeShortMessage } from "../adapters/smpp/pdu-encode.ts";

const COUNT = Number((import.meta.main ? process.argv[2] : undefined) ?? (quick ? 5_000 : 20_000));
const CAP_S = Number((import.meta.main ? process.argv[3] : undefined) ?? 10);
const silent = { debug() {}, info() {}, warn() {}, error() {} };

async function runCarrier(port: number, window: number) {
  const carrier = createSmppCarrier("bench", { port, window, tps: 0, system_id: "bench", password: "pw", enquire_link_s: 3600 }, { log: silent, now: Date.now });
  await carrier.start({ receipt: async () => {}, inbound: async () => {}, moIncomplete: () => {} });
  const latencies: number[] = [];
  let sent = 0;
  let ok = 0;
  const deadline = performance.now() + CAP_S * 1000;
  const t0 = performance.now();
  // Enough concurrent callers to keep the window full; the session queues the rest.
  const worker = async () => {
    while (sent < COUNT && performance.now() < deadline) {
      sent++;
      const s = performance.now();
      const r = await carrier.submit({ messageId: String(sent), from: "BENCH", to: "447700900123", text: "Benchmark message, GSM 7-bit, nothing fancy." });
      latencies.push(performance.now() - s);
      if (r.kind === "ok") ok++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(window * 2, 2) }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  // Read before stop: a stopped carrier holds no sessions, so no counters.
  const maxInFlight = carrier.counters()[0]!.counters.maxInFlight;
  await carrier.stop(1000);
  latencies.sort((a, b) => a - b);
  return { window, ok, elapsed, rate: ok / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), maxInFlight };
}

/** The simulator's ceiling: pre-encoded PDUs, a counter for the window, nothing else. */
async function runBare(port: number, window: number) {
  const sm: ShortMessageFields = {
    serviceType: "", sourceTon: 5, sourceNpi: 0, sourceAddr: "BENCH", destTon: 1, destNpi: 1, destAddr: "447700900123", esmClass: 0,
    protocolId: 0, priorityFlag: 0, scheduleDeliveryTime: "", validityPeriod: "", registeredDelivery: 1, replaceIfPresent: 0,
    dataCoding: 0, smDefaultMsgId: 0, shortMessage: Buffer.from("Benchmark message, GSM 7-bit, nothing fancy."), tlvs: [],
  };
  const socket = net.connect({ host: "127.0.0.1", port });
  socket.setNoDelay(true);
  await new Promise((r) => socket.once("connect", r));
  const reader = new FrameReader(65536);
  let acked = 0;
  let seq = 1;
  let outstanding = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const deadline = performance.now() + CAP_S * 1000;
  let t0 = 0;
  const pump = () => {
    const batch: Buffer[] = [];
    while (outstanding < window && seq <= COUNT && performance.now() < deadline) {
      batch.push(encodeShortMessage(Command.submit_sm, ++seq, sm));
      outstanding++;
    }
    if (batch.length) socket.write(Buffer.concat(batch));
    if (outstanding === 0) resolveDone();
  };
  socket.on("data", (chunk: Buffer) => {
    reader.feed(chunk, (f) => {
      const id = f.readUInt32BE(4);
      if (id === Command.bind_transceiver_resp) t0 = performance.now();
      else if (id === Command.submit_sm_resp) {
        acked++;
        outstanding--;
      }
    });
    pump();
  });
  socket.write(encodeBind(Command.bind_transceiver, 1, { systemId: "bare", password: "", systemType: "", interfaceVersion: 0x34, addrTon: 0, addrNpi: 0, addressRange: "" }));
  // Bounded even if the simulator stops answering.
  await Promise.race([done, Bun.sleep(CAP_S * 1000 + 5000)]);
  const elapsed = (performance.now() - t0) / 1000;
  socket.destroy();
  return { window, ok: acked, elapsed, rate: acked / elapsed };
}

/** The table rows: adapter submit_sm/s at window 1, 10, 50 beside the bare client at the same window. */
export async function benchSmpp(runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3))): Promise<Row[]> {
  const sim = await spawnHelper("smpp-smsc.ts");
  const rows: Row[] = [];
  try {
    for (const w of [1, 10, 50]) {
      const mine: number[] = [];
      const bare: number[] = [];
      const p99: number[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await runCarrier(sim.port, w);
        mine.push(r.rate);
        p99.push(r.p99);
        bare.push((await runBare(sim.port, w)).rate);
        console.error(`smpp window ${w} run ${i}: adapter ${Math.round(r.rate)} submit_sm/s (p99 ${r.p99.toFixed(2)} ms), bare ${Math.round(bare.at(-1)!)}`);
      }
      rows.push({
        bench: `SMPP submit_sm/s, one bind, ${COUNT.toLocaleString("en-US")} per run`,
        figure: `window ${w} (adapter p99 ${spread(p99, 2)} ms)`,
        gateway: spread(mine),
        ceiling: `${spread(bare)} (bare client, same window)`,
        ratio: spread(mine.map((m, i) => m / bare[i]!), 2),
        target: "",
      });
    }
  } finally {
    await sim.stop();
  }
  return rows;
}

if (import.meta.main) {
  const sim = await spawnHelper("smpp-smsc.ts");
  try {
    console.log(`SMPP bench: ${COUNT} submit_sm per run (cap ${CAP_S} s), one bind, simulator (node-smpp) in a separate process, Bun ${Bun.version}`);
    for (const w of [1, 10, 50]) {
      const r = await runCarrier(sim.port, w);
      console.log(`adapter  window ${String(w).padStart(2)}: ${Math.round(r.rate).toLocaleString("en")} submit_sm/s  (${r.ok} ok in ${r.elapsed.toFixed(2)} s, latency p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms, max in flight ${r.maxInFlight})`);
    }
    for (const w of [1, 10, 50]) {
      const bare = await runBare(sim.port, w);
      console.log(`bare client window ${w} (simulator ceiling): ${Math.round(bare.rate).toLocaleString("en")} submit_sm/s (${bare.ok} in ${bare.elapsed.toFixed(2)} s)`);
    }
  } finally {
    await sim.stop();
  }
}
