// A carrier's binds as a cluster limit: which slots a node keeps, takes and gives back. Pure; the store
// (postgres/bind-leases.ts) reads the slots, asks this, and writes the answer in one transaction.

/** One bind slot of a carrier as the store holds it. */
export interface BindSlot {
  slot: number;
  node: string | null;
  /** Lease end (ms); a slot past it is free, whoever held it. */
  until: number | null;
}

export interface BindDecision {
  /** Held by this node and kept. */
  keep: number[];
  /** Free (never held, released, or its holder stopped renewing): this node takes them. */
  take: number[];
  /** Held by this node above its share: closed, then released, so a node with fewer can take them. */
  surplus: number[];
}

/** The node holding a slot now, or null when it is free (never held, released, or its lease ran out). */
export function holderAt(s: BindSlot, now: number): string | null {
  return s.node !== null && s.until !== null && s.until >= now ? s.node : null;
}

/**
 * Each node wanting the carrier may hold ceil(limit / nodes wanting it): binds spread over the nodes (a
 * dead node loses only its share), and together they never hold more than `limit` since a slot has
 * one holder. Lowest slots first, so the same slots stay in use.
 */
export function decideBindHold(slots: BindSlot[], me: string, now: number, wanting: number, limit: number): BindDecision {
  const share = Math.ceil(limit / Math.max(1, wanting));
  const live = (s: BindSlot) => holderAt(s, now) !== null;
  const sorted = [...slots].sort((a, b) => a.slot - b.slot);
  const mine = sorted.filter((s) => live(s) && s.node === me).map((s) => s.slot);
  // Slots past the limit (held under an older, larger `binds`) are always given back.
  const kept = mine.filter((slot) => slot < limit);
  const free = sorted.filter((s) => s.slot < limit && !live(s)).map((s) => s.slot);
  const beyond = mine.filter((slot) => slot >= limit);
  if (kept.length > share) return { keep: kept.slice(0, share), take: [], surplus: [...kept.slice(share), ...beyond] };
  return { keep: kept, take: free.slice(0, share - kept.length), surplus: beyond };
}
