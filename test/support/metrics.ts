// Reads /metrics over HTTP and looks samples up by name and labels.

export interface Scrape {
  /** The sample's value; 0 when it is not there (a counter that never moved has no labelled series). */
  get(name: string, labels?: Record<string, string>): number;
  /** Sum over every series of `name` whose labels include `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
  text: string;
}

export async function scrape(base: string): Promise<Scrape> {
  const r = await fetch(`${base}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  const text = await r.text();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  const matches = (name: string, want: Record<string, string>) =>
    samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));
  return {
    text,
    get(name, labels = {}) {
      const exact = matches(name, labels).filter((s) => Object.keys(s.labels).length === Object.keys(labels).length);
      return exact[0]?.value ?? 0;
    },
    sum: (name, labels = {}) => matches(name, labels).reduce((n, s) => n + s.value, 0),
  };
}
