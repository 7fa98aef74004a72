// SMPP binds as a cluster limit: bind slots leased in the store (real PostgreSQL, several stores = several
// nodes, a fake clock for the leases), then real SMPP carriers over TCP to the simulator using them.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import postgres from "postgres";
import type { BindLeases, CarrierEvents } from "../../adapters/carrier.ts";
import { createSmppCarrier, tpsShare } from "../../adapters/smpp/smpp-carrier.ts";
import type { Store } from "../../src/store/index.ts";
import { PostgresStore } from "../../src/store/postgres/store.ts";
import { SqliteStore } from "../../src/store/sqlite/store.ts";
import { tempDir, waitFor } from "../support/app.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";
import { fastSettings, recordingLogger } from "../peers/smpp-harness.ts";
import { startSmsc, type Smsc } from "../peers/smpp-sim.ts";

const policy = { retryBaseMs: 1000, retryMaxMs: 60000, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy: "at-most-once" as const, noMmsMemoryMs: 0 };

const databases: TestDatabase[] = [];
const opened: Store[] = [];
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close().catch(() => {})));
  for (const d of databases) await d.drop();
}, 60_000);

async function nodes(n: number, now: () => number, leaseMs: number): Promise<PostgresStore[]> {
  const db = await createTestDatabase();
  databases.push(db);
  const stores = await Promise.all(Array.from({ length: n }, (_, i) => PostgresStore.open({ ...policy, now, url: db.url, nodeId: `node-${i}`, poolSize: 3, leaseMs })));
  opened.push(...stores);
  return stores;
}

test("one node (SQLite) holds every bind for good, as before leases", async () => {
  const store = SqliteStore.open(join(tempDir(), "g.db"), { ...policy, now: () => 1000, nodeId: "solo" });
  opened.push(store);
  expect(await store.holdBinds("sms", 3)).toEqual({ mine: [0, 1, 2], surplus: [], holders: ["solo", "solo", "solo"], held: 3, until: null });
});

describe.skipIf(!pgAvailable)("bind slots across nodes on one PostgreSQL", () => {
  test("three nodes holding at once never hold more than the limit, and one node at most per slot", async () => {
    const clock = { t: 1000 };
    const stores = await nodes(3, () => clock.t, 1000);
    for (let round = 0; round < 8; round++) {
      const holds = await Promise.all(stores.map((s) => s.holdBinds("sms", 2)));
      const held = holds.flatMap((h) => [...h.mine, ...h.surplus]);
      expect(new Set(held).size).toBe(held.length);
      expect(held.length).toBeLessThanOrEqual(2);
      // As a carrier does: the surplus is closed, then given back.
      await Promise.all(stores.map((s, i) => s.releaseBinds("sms", holds[i]!.surplus)));
      clock.t += 100;
    }
    const settled = await Promise.all(stores.map((s) => s.holdBinds("sms", 2)));
    expect(settled.map((h) => h.mine.length).sort()).toEqual([0, 1, 1]);
    expect(settled.map((h) => h.held)).toEqual([2, 2, 2]);
    // Each holder's tps is its share; together the carrier's.
    expect(settled.reduce((sum, h) => sum + tpsShare(50, h.mine.length, h.held), 0)).toBe(50);
    // Every node sees the same holders: the two holding nodes.
    const holding = stores.map((_, i) => `node-${i}`).filter((_, i) => settled[i]!.mine.length === 1);
    for (const h of settled) expect([...h.holders].sort()).toEqual(holding);
  });

  test("a node that stops renewing: its binds are taken over only after its lease ran out; its late renewal gets nothing back", async () => {
    const clock = { t: 1000 };
    const [a, b] = await nodes(2, () => clock.t, 1000);
    expect((await a!.holdBinds("sms", 2)).mine).toEqual([0, 1]);
    const waiting = await b!.holdBinds("sms", 2);
    expect(waiting.mine).toEqual([]);
    expect(waiting.holders).toEqual(["node-0", "node-0"]);
    // node-0 dies: no more renewals. Until its lease ends, nothing moves.
    clock.t += 1000;
    expect((await b!.holdBinds("sms", 2)).mine).toEqual([]);
    clock.t += 1;
    const taken = await b!.holdBinds("sms", 2);
    expect(taken).toMatchObject({ mine: [0, 1], holders: ["node-1", "node-1"], held: 2, until: clock.t + 1000 });
    const late = await a!.holdBinds("sms", 2);
    expect(late.mine).toEqual([]);
    expect(late.holders).toEqual(["node-1", "node-1"]);
  });

  test("a released slot is free at once; a release of a slot another node holds changes nothing", async () => {
    const clock = { t: 1000 };
    const [a, b] = await nodes(2, () => clock.t, 60_000);
    expect((await a!.holdBinds("sms", 1)).mine).toEqual([0]);
    await b!.releaseBinds("sms", [0]);
    expect((await b!.holdBinds("sms", 1)).mine).toEqual([]);
    await a!.releaseBinds("sms", [0]);
    expect((await b!.holdBinds("sms", 1)).mine).toEqual([0]);
  });
});

describe.skipIf(!pgAvailable)("SMPP carriers on leased binds (simulator over TCP)", () => {
  const events: CarrierEvents = { receipt: async () => {}, inbound: async () => {}, moIncomplete: () => {} };
  const leasesOf = (store: Store, renewEveryMs: number): BindLeases => ({
    renewEveryMs,
    hold: (limit) => store.holdBinds("sms", limit),
    release: (slots) => store.releaseBinds("sms", slots),
  });

  test("three nodes bind at most `binds` times together; a stopped node's binds go to the others; tps follows the binds held", async () => {
    const smsc: Smsc = await startSmsc();
    const stores = await nodes(3, Date.now, 600);
    const carriers = stores.map((s) =>
      createSmppCarrier("sms", { ...fastSettings, port: smsc.port, binds: 2, tps: 60 }, { log: recordingLogger([]), now: Date.now, binds: leasesOf(s, 200) }),
    );
    try {
      await Promise.all(carriers.map((c) => c.start(events)));
      const held = () => carriers.map((c) => c.share().slots.length);
      // Settled when two nodes hold one bind each and the SMSC has both.
      await waitFor("one bind at each of two nodes", () => held().filter((n) => n === 1).length === 2 && smsc.boundNow === 2, 10_000);
      const standby = carriers.findIndex((c) => c.share().slots.length === 0);
      expect(carriers[standby]!.standby!()).toBe(true);
      expect(carriers[standby]!.health().map((h) => h.state)).toEqual(["standby", "standby"]);
      // Each holder learns of the other's bind at its next renewal: until then it may still count the whole tps.
      const tps = () => carriers.filter((_, i) => i !== standby).map((c) => c.share().tps);
      await waitFor("the tps split between the two holders", () => tps().join() === "30,30", 10_000);
      expect(tps()).toEqual([30, 30]);
      // One holder stops (unbinds, releases): the standby node takes its slot.
      const leaving = carriers.findIndex((c, i) => i !== standby && c.share().slots.length === 1);
      await carriers[leaving]!.stop(1000);
      await waitFor("the standby node bound", () => carriers[standby]!.share().slots.length === 1 && smsc.boundNow === 2, 10_000);
      expect(carriers[standby]!.standby!()).toBe(false);
      expect(smsc.maxBound).toBe(2);
    } finally {
      await Promise.all(carriers.map((c) => c.stop(500)));
      await smsc.stop();
    }
  }, 30_000);
  test("renewals that stop after a timely one: the node unbinds one renewal before its lease ends, in-flight submits given half of that", async () => {
    const smsc: Smsc = await startSmsc();
    const db = await createTestDatabase();
    databases.push(db);
    const store = await PostgresStore.open({ ...policy, now: Date.now, url: db.url, nodeId: "node-0", poolSize: 3, leaseMs: 1500 });
    opened.push(store);
    const renewEveryMs = 500;
    const carrier = createSmppCarrier("sms", { ...fastSettings, port: smsc.port, binds: 1 }, { log: recordingLogger([]), now: Date.now, binds: leasesOf(store, renewEveryMs) });
    // Another session holding the carrier's lock stalls every renewal, as a database that stops answering would.
    const other = postgres(db.url, { max: 1, onnotice: () => {} });
    const until = async () => Number((await other`SELECT lease_until FROM bind_leases WHERE carrier = 'sms' AND slot = 0`)[0]!.lease_until);
    const lockKey = "mms-gateway:binds\nsms";
    let locked = false;
    try {
      await carrier.start(events);
      await waitFor("bound", () => smsc.boundNow === 1, 10_000);
      // A renewal on the timer, not the one at start, is the last before the stall.
      const first = await until();
      await waitFor("a renewal", async () => (await until()) > first, 10_000);
      await other`SELECT pg_advisory_lock(hashtextextended(${lockKey}, 0))`;
      locked = true;
      const leaseEnd = await until();
      let unboundAt = 0;
      for (let i = 0; i < 2000 && unboundAt === 0; i++) {
        if (smsc.boundNow === 0) unboundAt = Date.now();
        else await Bun.sleep(5);
      }
      expect(unboundAt).toBeGreaterThan(0);
      expect(unboundAt).toBeLessThanOrEqual(leaseEnd - renewEveryMs / 2);
    } finally {
      if (locked) await other`SELECT pg_advisory_unlock(hashtextextended(${lockKey}, 0))`;
      await other.end({ timeout: 1 });
      await carrier.stop(500);
      await smsc.stop();
    }
  }, 30_000);
});
