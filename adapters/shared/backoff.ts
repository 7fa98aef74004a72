/**
 * Exponential backoff with jitter over the upper half, capped: the n-th retry (n ≥ 1) waits in
 * [c/2, c] where c = min(maxMs, baseMs·2^(n-1)). The jitter keeps a fleet of retries (binds reconnecting,
 * webhooks, submits) from moving in step; the floor keeps each wait meaningful.
 */
export function jitteredBackoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
