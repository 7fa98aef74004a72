// The benchmarks' figures: medians and spreads of runs, percentiles, and the table each run prints.

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** "median (min–max)" of several runs. */
export function spread(xs: number[], digits = 0): string {
  const f = (x: number) => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

export const quick = process.env.BENCH_QUICK === "1";

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
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
