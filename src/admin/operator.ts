// What an operator may do to the queue, shared by the admin CLI and the admin HTTP API so both read
// their arguments the same way and apply the same limits.
import type { RetryFilter, Store } from "../store/index.ts";

export class OperatorInputError extends Error {}

export type { RetryFilter };

/** `{since?: ISO time, error?: code, account?: id, limit?: n}` as given on the command line or in JSON. */
export function retryFilter(raw: { since?: unknown; error?: unknown; account?: unknown; limit?: unknown }): RetryFilter {
  const f: RetryFilter = {};
  if (raw.since !== undefined) {
    const t = typeof raw.since === "string" ? Date.parse(raw.since) : NaN;
    if (Number.isNaN(t)) throw new OperatorInputError(`since: expected an ISO 8601 time like 2025-01-31T12:00:00Z (got ${JSON.stringify(raw.since)})`);
    f.since = t;
  }
  if (raw.error !== undefined) {
    if (typeof raw.error !== "string" || raw.error === "") throw new OperatorInputError("error: expected an error code like mm7:4007");
    f.errorCode = raw.error;
  }
  if (raw.account !== undefined) {
    if (typeof raw.account !== "string" || raw.account === "") throw new OperatorInputError("account: expected an account id");
    f.accountId = raw.account;
  }
  if (raw.limit !== undefined) f.limit = positiveInt(raw.limit, "limit");
  return f;
}

/** `"all"` or a list of event sequence numbers. */
export function requeueTarget(raw: unknown): number[] | "all" {
  if (raw === "all") return "all";
  if (Array.isArray(raw) && raw.length > 0) return raw.map((s) => positiveInt(s, "seqs"));
  throw new OperatorInputError('seqs: expected "all" or a non-empty list of sequence numbers');
}

export function positiveInt(v: unknown, name: string): number {
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) throw new OperatorInputError(`${name}: expected a positive whole number (got ${JSON.stringify(v)})`);
  return n;
}

/**
 * Deletes finished messages and delivered events older than `hours`. Dedup keys go only once they are
 * also past the dedup window: a purge must never let a retried request_id be sent twice.
 */
export function purgeOlderThan(store: Store, hours: number, dedupWindowMs: number, now: number) {
  const olderThanMs = hours * 3_600_000;
  return store.purge(now - Math.max(olderThanMs, dedupWindowMs), now - olderThanMs);
}
