// Route lookup cost per message with 1,000 routes: a recipient no route matches (every prefix length
// probed, every any-recipient route tested) and recipients matching routes spread over the table, beside the best case (no routes at all) as the ceiling. Pure CPU, no I/O;
// bounded in count. Run alone: `bun bench/routes.ts`, or in `make bench` (BENCH_ONLY=routes).
import { RouteTable, type RouteRule } from "../src/domain/route.ts";
import { median, quick, type Row, spread } from "./lib/figures.ts";

function rules(n: number): RouteRule[] {
  const out: RouteRule[] = [];
  for (let i = 0; i < n; i++) {
    // Mostly country/network prefixes (3–5 digits, two per route), every tenth an account route.
    const account = i % 10 === 9;
    out.push({
      channel: "sms",
      prefixes: account ? [] : [String(200 + i), String(20000 + i * 7)],
      accounts: account ? [`acct${i}`] : [],
      carriers: [`c${i % 7}`, `c${(i + 1) % 7}`],
      retry_elsewhere: ["temporary"],
    });
  }
  return out;
}

function timeLookups(table: RouteTable, tos: string[], rounds: number): number {
  let sink = 0;
  const t = performance.now();
  for (let r = 0; r < rounds; r++) for (const to of tos) sink += table.lookup("sms", "acme", to).carriers.length;
  const ns = ((performance.now() - t) * 1e6) / (rounds * tos.length);
  if (sink === 0) throw new Error("lookups returned nothing");
  return ns;
}

export async function benchRoutes(): Promise<Row[]> {
  const runs = quick ? 1 : 5;
  const rounds = quick ? 20 : 100;
  const table = new RouteTable(rules(1000), { mms: "mms", sms: "sms" });
  const empty = new RouteTable([], { mms: "mms", sms: "sms" });
  // 1,000 recipients no route matches: the most work a lookup does.
  const misses = Array.from({ length: 1000 }, (_, i) => `+1${String(2025550000 + i)}`);
  // and 1,000 that match a route spread over the table (on average half of it is walked).
  const hits = Array.from({ length: 1000 }, (_, i) => `+${200 + ((i * 37) % 1000)}${String(1000000 + i)}`);
  const worst: number[] = [];
  const spreadHits: number[] = [];
  const none: number[] = [];
  timeLookups(table, misses, 5); // warm-up
  for (let r = 0; r < runs; r++) {
    worst.push(timeLookups(table, misses, rounds));
    spreadHits.push(timeLookups(table, hits, rounds));
    none.push(timeLookups(empty, misses, rounds));
  }
  const row = (figure: string, xs: number[]): Row => ({
    bench: "route lookup, 1,000 [[routes]]",
    figure,
    gateway: `${spread(xs)} ns`,
    ceiling: `${median(none).toFixed(0)} ns (no routes)`,
    ratio: (median(xs) / median(none)).toFixed(1),
    target: "",
  });
  return [row("no route matches: ns per message", worst), row("matching route spread over the table: ns per message", spreadHits)];
}

if (import.meta.main) {
  for (const r of await benchRoutes()) console.log(`${r.figure}: ${r.gateway}; ceiling ${r.ceiling}; ratio ${r.ratio}`);
}
