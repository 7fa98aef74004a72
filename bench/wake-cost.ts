// bench/wake-cost: what a bare Bun server and client (one process, loopback) pay per request in CPU when the
// requests come back to back, and when a pause lets the event loop park between them (#15: why the gateway's CPU
// per message is higher at 1,000/s than in a burst). Not part of `make bench`: it measures the runtime, not us.
// Usage: bun bench/wake-cost.ts [pause ms …]   (default: 0 15)
const pauses = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [0, 15];
const N = 300;

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: async (r) => Response.json({ ok: JSON.stringify(await r.json()).length }),
});
const url = `http://127.0.0.1:${server.port}`;
try {
  for (const pause of pauses) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      await (await fetch(url, { method: "POST", body: JSON.stringify({ a: i, b: "x".repeat(200) }) })).text();
      if (pause > 0) await Bun.sleep(pause);
    }
    const c = process.cpuUsage(c0);
    console.log(`${N} requests, ${pause} ms pause: user ${(c.user / 1000 / N).toFixed(3)} ms/req, system ${(c.system / 1000 / N).toFixed(3)} ms/req, wall ${((performance.now() - t0) / N).toFixed(1)} ms/req`);
  }
} finally {
  server.stop(true);
}
export {}; // a module: its names stay its own
