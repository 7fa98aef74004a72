// SMPP bind slots leased across the nodes sharing the database (table bind_leases): a node holds a slot
// before it binds, renews it while it lives, and gives it back after unbinding; a slot whose lease ran
// out (its node died) is free for another. Which slots a node keeps, takes and gives back is decided in
// domain/bind-lease.ts; this reads and writes it in one transaction per carrier.
import type { BindHold } from "../../../adapters/carrier.ts";
import { decideBindHold, holderAt } from "../../domain/bind-lease.ts";
import type { PostgresCore } from "./core.ts";

export function holdBinds(core: PostgresCore, carrier: string, limit: number): Promise<BindHold> {
  return core.tx(async (tx) => {
    // One node at a time per carrier: the decision reads every slot and the wanters, then writes them.
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`mms-gateway:binds\n${carrier}`}, 0))`;
    const me = core.node;
    const now = core.now();
    const until = now + core.leaseMs;
    await tx`INSERT INTO bind_wanters (carrier, node, seen_at) VALUES (${carrier}, ${me}, ${now})
      ON CONFLICT (carrier, node) DO UPDATE SET seen_at = EXCLUDED.seen_at`;
    const slotNumbers = Array.from({ length: limit }, (_, i) => i);
    await tx`INSERT INTO bind_leases (carrier, slot) SELECT ${carrier}, s FROM unnest(${slotNumbers}::int[]) AS s ON CONFLICT DO NOTHING`;
    const [w] = await tx`SELECT COUNT(*)::int AS n FROM bind_wanters WHERE carrier = ${carrier} AND seen_at >= ${now - core.leaseMs}`;
    const rows = await tx`SELECT slot, node, lease_until FROM bind_leases WHERE carrier = ${carrier} ORDER BY slot`;
    const slots = rows.map((r) => ({ slot: r.slot as number, node: r.node as string | null, until: r.lease_until as number | null }));
    const d = decideBindHold(slots, me, now, w!.n as number, limit);
    // Surplus slots stay held (and renewed) until their binds are closed and released.
    const renewed = [...d.keep, ...d.take, ...d.surplus];
    if (renewed.length) await tx`UPDATE bind_leases SET node = ${me}, lease_until = ${until} WHERE carrier = ${carrier} AND slot = ANY(${renewed}::int[])`;
    const holders = slots
      .filter((s) => s.slot < limit)
      .map((s) => (renewed.includes(s.slot) ? me : holderAt(s, now)));
    return {
      mine: [...d.keep, ...d.take].sort((a, b) => a - b),
      surplus: d.surplus,
      holders,
      held: holders.filter((h) => h !== null).length,
      until,
    };
  });
}

/** Gives back slots this node closed; a slot another node took meanwhile is left alone. */
export async function releaseBinds(core: PostgresCore, carrier: string, slots: number[]): Promise<void> {
  await core.tx((tx) => tx`UPDATE bind_leases SET node = NULL, lease_until = NULL WHERE carrier = ${carrier} AND slot = ANY(${slots}::int[]) AND node = ${core.node}`);
}
