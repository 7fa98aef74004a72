// The dispatcher as one node of two on PostgreSQL (test/support/dispatcher-bed.ts, fake clock): the other
// node holds the SMSC's only bind, so this node's SMPP carrier stands by and its messages are left to that node.
import { afterAll, describe, expect, test } from "bun:test";
import { RouteTable } from "../../src/domain/route.ts";
import { PostgresStore } from "../../src/store/postgres/store.ts";
import { waitFor } from "../support/app.ts";
import { bedPerTest } from "../support/dispatcher-bed.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";
import { startSmsc } from "../peers/smpp-sim.ts";

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
}, 30_000);
const bed = bedPerTest();

describe.skipIf(!pgAvailable)("standing by for the node that holds the binds (PostgreSQL)", () => {
  test("a lane whose carriers all stand by claims nothing and polls; a message routed to a standing-by carrier is left due and polled for", async () => {
    const smsc = await startSmsc();
    const db = await createTestDatabase();
    databases.push(db);
    const other = await PostgresStore.open({ retryBaseMs: 50, retryMaxMs: 500, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy: "at-most-once", now: () => 1_700_000_000_000, url: db.url, nodeId: "other", poolSize: 1, leaseMs: 600_000 });
    try {
      expect((await other.holdBinds("smsc", 1)).mine).toEqual([0]);
      const b = await bed({
        pg: { url: db.url, nodeId: "here" },
        config: {
          node: { id: "here", lease_ms: 600_000 },
          store: { kind: "postgres", url: db.url },
          carriers: { smsc: { kind: "smpp", name: "smsc", channel: "sms", host: "127.0.0.1", port: smsc.port, system_id: "gw", password: "pw" } },
          routes: [{ channel: "sms", prefixes: ["1202"], carriers: ["smsc"] }],
        },
        deps: { pollMs: 700 },
      });
      await waitFor("standing by", () => b.carriers.byName.get("smsc")!.carrier.standby?.() === true);
      // Routed to the carrier whose binds the other node holds: left due for that node, and not looked for
      // again at once (it would be found due at every look): the lane polls.
      const left = await b.accept("sms", "0012025550900");
      const sent = await b.accept("sms", "0014155550900");
      b.dispatcher.wake("sms");
      await b.settled(1);
      expect(b.claims.filter((c) => c.channel === "sms").map((c) => c.got)).toEqual([1]);
      expect(b.clock.delays.at(-1)).toBe(700);
      expect((await b.state(left)).state).toBe("accepted");
      expect((await b.state(sent)).attempts).toBe(1);
      // Routed to the sandbox now: nothing is left, and the lane polls for the next retry, not every 700 ms.
      b.router.setRoutes(new RouteTable([], { mms: "mms", sms: "sms" }));
      const retried = await b.accept("sms", "0014155550901"); // sandbox 01: refused once
      b.dispatcher.wake("sms");
      await waitFor("both answered", async () => (await b.state(left)).attempts === 1 && (await b.state(retried)).attempts === 1);
      await b.settled(1);
      const next = (await b.store.nextDue("accepted", "sms"))!;
      expect(b.clock.delays.at(-1)).toBe(next - b.clock.t);
      expect(next - b.clock.t).toBeLessThan(700);
      // With the sandbox gone, every SMS carrier stands by: no claim at all (the MMS carrier does not count).
      const claims = b.claims.filter((c) => c.channel === "sms").length;
      b.carriers.byName.delete("sms");
      b.dispatcher.wake("sms");
      await b.settled(1);
      b.clock.advance(b.clock.delays.at(-1)!);
      await b.settled(1);
      expect(b.claims.filter((c) => c.channel === "sms")).toHaveLength(claims);
      expect(b.clock.delays.at(-1)).toBe(700);
      expect(smsc.submits).toHaveLength(0);
    } finally {
      await other.close();
      await smsc.stop();
    }
  });
});
