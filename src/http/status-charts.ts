// The status page's charts: bar charts drawn as inline SVG on the server, so the page stays one
// document with no script and nothing fetched from elsewhere. Each bar carries a <title> (the
// browser's tooltip) and its figures as data attributes.
import type { ThroughputBucket } from "../observe/activity.ts";
import { esc } from "./html.ts";

export interface Series {
  name: string;
  color: string;
  value: (b: ThroughputBucket) => number;
}

const hms = (ms: number) => new Date(ms).toISOString().slice(11, 19);

const width = 620;
const height = 130;
const left = 40;
const bottom = 18;
const top = 8;

/** Stacked bars, one per bucket, oldest on the left; the y axis is labelled with the tallest bar. */
export function barChart(key: string, label: string, buckets: ThroughputBucket[], series: Series[], bucketMs: number): string {
  const totals = buckets.map((b) => series.reduce((n, s) => n + s.value(b), 0));
  const max = Math.max(1, ...totals);
  const plotH = height - top - bottom;
  const slot = (width - left) / buckets.length;
  const bars = buckets
    .map((b, i) => {
      let y = height - bottom;
      const tip = `${hms(b.start)}–${hms(b.start + bucketMs)}: ${series.map((s) => `${s.value(b)} ${s.name}`).join(", ")}`;
      const rects = series
        .filter((s) => s.value(b) > 0)
        .map((s) => {
          const h = (s.value(b) / max) * plotH;
          y -= h;
          return `<rect x="${(left + i * slot + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${(slot - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}" data-series="${esc(s.name)}" data-count="${s.value(b)}"/>`;
        })
        .join("");
      return `<g><title>${esc(tip)}</title>${rects || `<rect x="${(left + i * slot + 1).toFixed(1)}" y="${height - bottom - 1}" width="${(slot - 2).toFixed(1)}" height="1" fill="#ddd"/>`}</g>`;
    })
    .join("");
  const axis =
    `<line x1="${left}" y1="${height - bottom}" x2="${width}" y2="${height - bottom}" stroke="#999"/>` +
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#999"/>` +
    `<text x="${left - 4}" y="${top + 10}" text-anchor="end">${max}</text><text x="${left - 4}" y="${height - bottom}" text-anchor="end">0</text>` +
    `<text x="${left}" y="${height - 4}">${hms(buckets[0]!.start)}</text>` +
    `<text x="${width}" y="${height - 4}" text-anchor="end">${hms(buckets.at(-1)!.start + bucketMs)} UTC</text>`;
  const legend = series.map((s) => `<span class="key"><i style="background:${s.color}"></i>${esc(s.name)}</span>`).join(" ");
  return (
    `<figure><figcaption>${esc(label)} <small>per ${bucketMs / 1000} s · ${legend}</small></figcaption>` +
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(label)}" data-k="${esc(key)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-size="10" font-family="system-ui,sans-serif">` +
    `${axis}${bars}</svg></figure>`
  );
}
