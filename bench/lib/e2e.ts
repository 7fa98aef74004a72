// One end-to-end run: requests in at the Channel API, callbacks out at the counting sink, and the
// figures between them.
import { percentile } from "./figures.ts";
import { rawLoad, type LoadResult } from "./load.ts";
import { cpuMsOf, type SinkHandle } from "./processes.ts";

/** request → callback latencies (ms, sorted) for keys `key(i)` of the sent requests. */
function callbackLatencies(load: LoadResult, times: Record<string, number>, key: (i: number) => string): number[] {
  const out: number[] = [];
  for (let i = 0; i < load.sendTimes.length; i++) {
    const s = load.sendTimes[i]!;
    const t = times[key(i)];
    if (!Number.isNaN(s) && t !== undefined) out.push(t - s);
  }
  return out.sort((a, b) => a - b);
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
  /** First send → first callback, ms (what the first message waits, e.g. for its media to be fetched and adapted). */
  firstCallbackMs: number;
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
    firstCallbackMs: s.first - t0,
  };
}
