// SMPP bind slots on one node: every slot is this node's, for good (today's behaviour, through the same
// interface as the cluster's leases in postgres/bind-leases.ts).
import type { BindHold } from "../../../adapters/carrier.ts";
import type { SqliteCore } from "./core.ts";

export async function holdBinds(c: SqliteCore, _carrier: string, limit: number): Promise<BindHold> {
  const all = Array.from({ length: limit }, (_, i) => i);
  return { mine: all, surplus: [], holders: all.map(() => c.opts.nodeId ?? null), held: limit, until: null };
}

export async function releaseBinds(_c: SqliteCore, _carrier: string, _slots: number[]): Promise<void> {}
