// The dispatcher alone on a fake clock (test/support/dispatcher-bed.ts): which claims its wakes make, how
// much it claims at once, when it polls, the concurrency cap, delivery.paused and stop().
import { describe, expect, test } from "bun:test";
import { bedPerTest, dispatcherBed } from "../support/dispatcher-bed.ts";
import { tempDir, waitFor } from "../support/app.ts";

const bed = bedPerTest();

describe("claims", () => {
  test("a burst is claimed in claim_batch slices, one claim at a time, without waiting for a poll", async () => {
    const b = await bed({ config: { delivery: { claim_batch: 2 } } });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await b.accept("sms", `00120255503${10 + i}`));
    b.dispatcher.start();
    await b.settled();
    const sms = b.claims.filter((c) => c.channel === "sms");
    // Submits that end while a full claim says more may be due wake the lane once more: empty claims after these.
    expect(sms.slice(0, 3).map((c) => [c.limit, c.got])).toEqual([[2, 2], [2, 2], [2, 1]]);
    expect(sms.slice(3).every((c) => c.got === 0)).toBe(true);
    expect(new Set(b.clock.delays)).toEqual(new Set([1000]));
    expect(Math.max(...b.claims.map((c) => c.overlapping))).toBe(1);
    for (const id of ids) expect((await b.state(id)).attempts).toBe(1);
    expect(await b.counter("gateway_submissions_total", { carrier: "sms", outcome: "ok" })).toBe(5);
  });
});

describe("wakes", () => {
  test("work made due while a claim runs is claimed by that lane's next claim, not by a second claim beside it", async () => {
    const b = await bed();
    const release = b.holdClaim();
    b.dispatcher.wake("sms");
    await waitFor("the claim done in the database", () => b.claims.length === 1 && b.claims[0]!.got === 0);
    // It found nothing, and has not told the lane yet: this message came too late for it.
    const id = await b.accept("sms", "0012025550320");
    b.dispatcher.wake("sms");
    b.dispatcher.wake("sms");
    release();
    await b.settled(1);
    expect((await b.state(id)).attempts).toBe(1);
    expect(Math.max(...b.claims.map((c) => c.overlapping))).toBe(1);
    expect(b.claims.filter((c) => c.channel === "sms").length).toBeGreaterThanOrEqual(2);
  });

  test("the poll timer wakes the lane: a message written behind the dispatcher's back is claimed when it fires", async () => {
    const b = await bed({ deps: { pollMs: 250 } });
    b.dispatcher.start();
    await b.settled();
    expect(b.clock.delays).toEqual([250, 250]);
    const id = await b.accept("sms", "0012025550321");
    const before = b.claims.length;
    b.clock.advance(249);
    expect(b.claims.length).toBe(before);
    b.clock.advance(1);
    await b.settled();
    expect(b.claims.length).toBe(before + 2);
    expect((await b.state(id)).attempts).toBe(1);
  });

  test("delivery.paused: nothing is claimed or submitted; a dispatcher on the same database without it sends everything", async () => {
    const dir = tempDir();
    const paused = await dispatcherBed({ dir, deps: { paused: true } });
    const ids = [await paused.accept("sms", "0012025550330"), await paused.accept("mms", "0012025550331")];
    paused.dispatcher.start();
    paused.dispatcher.wake("sms");
    paused.dispatcher.wake("mms");
    paused.clock.advance(600_000);
    await Bun.sleep(5);
    expect(paused.claims).toEqual([]);
    expect(paused.clock.delays).toEqual([]);
    await paused.stop();
    const resumed = await bed({ dir, clock: paused.clock });
    resumed.dispatcher.start();
    await resumed.settled();
    for (const id of ids) expect((await resumed.state(id)).attempts).toBe(1);
  });

  test("after stop(): timers cleared, and no wake claims", async () => {
    const b = await bed();
    b.dispatcher.start();
    await b.settled();
    const stopped = b.dispatcher.stop(10);
    expect(b.clock.timers.size).toBe(0);
    await stopped;
    const n = b.claims.length;
    await b.accept("sms", "0012025550340");
    b.dispatcher.wake("sms");
    b.clock.advance(3_600_000);
    await Bun.sleep(5);
    expect(b.claims.length).toBe(n);
  });

  test("stop() while the next poll is being worked out: no timer is left", async () => {
    const b = await bed();
    const nextDue = b.store.nextDue;
    let stopped: Promise<void> | null = null;
    b.store.nextDue = async (state, channel) => {
      const next = await nextDue(state, channel);
      stopped ??= b.dispatcher.stop(60_000);
      return next;
    };
    b.dispatcher.wake("sms");
    await waitFor("stop() called", () => stopped !== null);
    await stopped;
    await Bun.sleep(5);
    expect(b.clock.timers.size).toBe(0);
  });

  test("stop() waits for a claim under way and for the submits it claimed", async () => {
    const b = await bed();
    const id = await b.accept("sms", "0012025550341");
    b.dispatcher.start();
    expect(b.claims.some((c) => c.channel === "sms")).toBe(true);
    await b.dispatcher.stop(60_000);
    expect(b.clock.timers.size).toBe(0);
    const m = await b.state(id);
    expect(m.attempts).toBe(1);
    expect(["submitted", "delivered"]).toContain(m.state);
  });
});

describe("concurrency", () => {
  async function heldMmsc() {
    const { startMmscStub } = await import("../peers/mm7-stub.ts");
    const held: (() => void)[] = [];
    let open = 0;
    let most = 0;
    const stub = await startMmscStub({
      scenario: () =>
        new Promise((resolve) => {
          most = Math.max(most, ++open);
          held.push(() => {
            open--;
            resolve({ kind: "ok" });
          });
        }),
    });
    return { stub, held, most: () => most };
  }

  test("no more submits in flight than the channel's concurrency; each freed slot claims one more; a full lane has no poll timer", async () => {
    const mmsc = await heldMmsc();
    try {
      const b = await bed({
        config: { carriers: { mms: { kind: "mm7", url: mmsc.stub.url, username: "v", password: "p", concurrency: 8 } }, inbound: { mm7: { path: "/mm7", username: "mmsc", password: "in-secret" } } },
        deps: { concurrency: { mms: 2, sms: 4 } },
      });
      const ids = [];
      for (let i = 0; i < 4; i++) ids.push(await b.accept("mms", `00120255504${10 + i}`));
      b.dispatcher.start();
      await waitFor("two submits at the MMSC", () => mmsc.held.length === 2);
      await waitFor("the SMS lane to poll", () => b.clock.timers.size === 1);
      expect(b.dispatcher.busy()).toBe(2);
      const mms = () => b.claims.filter((c) => c.channel === "mms");
      expect(mms().map((c) => [c.limit, c.got])).toEqual([[2, 2]]);
      // Full: no poll timer on the MMS lane (only the SMS lane's).
      b.clock.advance(3_000);
      await Bun.sleep(5);
      expect(mms()).toHaveLength(1);
      mmsc.held.shift()!();
      await waitFor("a third submit", () => mmsc.held.length === 2);
      expect(mms()[1]).toMatchObject({ limit: 1, got: 1 });
      mmsc.held.shift()!();
      mmsc.held.shift()!();
      await waitFor("the fourth submit", () => mmsc.stub.received.length === 4);
      while (mmsc.held.length > 0) mmsc.held.shift()!();
      await b.settled();
      expect(mmsc.most()).toBe(2);
      expect(mms().every((c) => c.limit >= 1 && c.limit <= 2)).toBe(true);
      for (const id of ids) expect((await b.state(id)).state).toBe("submitted");
      expect(b.dispatcher.busy()).toBe(0);
    } finally {
      await mmsc.stub.stop();
    }
  });

  test("a lane that fills up drops its poll timer; one left full by a lowered concurrency gets it back from its next finished submit", async () => {
    const mmsc = await heldMmsc();
    try {
      const limits = { mms: 3, sms: 1 };
      const b = await bed({ config: { carriers: { mms: { kind: "mm7", url: mmsc.stub.url, username: "v", password: "p" } }, inbound: { mm7: { path: "/mm7", username: "mmsc", password: "in-secret" } } }, deps: { concurrency: limits } });
      await b.accept("mms", "0012025550430");
      b.dispatcher.wake("mms");
      await waitFor("one at the MMSC, the lane polling", () => mmsc.held.length === 1 && b.clock.timers.size === 1);
      await b.accept("mms", "0012025550431");
      await b.accept("mms", "0012025550432");
      b.dispatcher.wake("mms");
      await waitFor("three at the MMSC", () => mmsc.held.length === 3);
      await b.settled(0, 3);
      // Two of three in flight, then the concurrency lowered to two as the claim ends (a SIGHUP): full, no timer.
      for (let i = 0; i < 3; i++) mmsc.held.shift()!();
      await b.settled(1);
      await b.accept("mms", "0012025550433");
      await b.accept("mms", "0012025550434");
      const release = b.holdClaim();
      b.dispatcher.wake("mms");
      await waitFor("the claim done in the database", () => b.claims.at(-1)!.got === 2);
      limits.mms = 2;
      release();
      await waitFor("two more at the MMSC", () => mmsc.held.length === 2);
      await b.settled(0, 2);
      mmsc.held.shift()!();
      await b.settled(1, 1);
      mmsc.held.shift()!();
      await b.settled(1);
    } finally {
      while (mmsc.held.length > 0) mmsc.held.shift()!();
      await mmsc.stub.stop();
    }
  });

  test("busy() counts both lanes' submits in flight", async () => {
    const mmsc = await heldMmsc();
    const { startSmsc } = await import("../peers/smpp-sim.ts");
    const smsc = await startSmsc({ neverAnswer: true });
    try {
      const b = await bed({
        config: {
          carriers: {
            mms: { kind: "mm7", url: mmsc.stub.url, username: "v", password: "p" },
            sms: { kind: "smpp", host: "127.0.0.1", port: smsc.port, system_id: "gw", password: "pw", reconnect_min_ms: 100, reconnect_max_ms: 500 },
          },
          inbound: { mm7: { path: "/mm7", username: "mmsc", password: "in-secret" } },
        },
      });
      await waitFor("SMPP bound", () => smsc.openSessions > 0);
      await b.accept("mms", "0012025550420");
      await b.accept("sms", "0012025550421");
      await b.accept("sms", "0012025550422");
      b.dispatcher.start();
      await waitFor("three submits out", () => mmsc.held.length === 1 && smsc.submits.length === 2);
      expect(b.dispatcher.busy()).toBe(3);
      mmsc.held.shift()!();
    } finally {
      await mmsc.stub.stop();
      await smsc.stop();
    }
  });
});

describe("polls", () => {
  test("a retry's backoff sets the poll: the lane wakes when it ends, not before", async () => {
    const b = await bed();
    const id = await b.accept("sms", "0012025550501"); // sandbox 01: refused once, for 100 ms
    b.dispatcher.start();
    await b.settled();
    const next = (await b.store.nextDue("accepted", "sms"))!;
    const wait = next - b.clock.t;
    expect(wait).toBeGreaterThan(5);
    expect(wait).toBeLessThan(1000);
    expect(b.clock.delays.at(-1)).toBe(wait);
    // A message claimed and taken meanwhile leaves nothing to other nodes: the poll still waits for the retry.
    const other = await b.accept("sms", "0012025550505");
    b.dispatcher.wake("sms");
    await waitFor("it is taken", async () => (await b.state(other)).attempts === 1);
    await b.settled();
    expect(b.clock.delays.at(-1)).toBe(wait);
    const claims = b.claims.length;
    b.clock.advance(wait - 1);
    await Bun.sleep(5);
    expect(b.claims.length).toBe(claims);
    b.clock.advance(1);
    await b.settled();
    expect((await b.state(id)).attempts).toBe(2);
    // Never two poll timers for one lane: each new one replaced the last.
    expect(b.clock.timers.size).toBe(2);
  });

  test("a retry the poll may have missed (due already) is looked for again 5 ms on; a failed claim is logged", async () => {
    const b = await bed();
    const { Database } = await import("bun:sqlite");
    const id = await b.accept("sms", "0012025550510");
    b.store.db.run("PRAGMA busy_timeout = 20");
    const other = new Database(`${b.store.db.filename}`);
    other.run("BEGIN IMMEDIATE");
    try {
      b.dispatcher.start();
      await b.settled();
      expect(b.lines.filter((l) => l.msg.startsWith("claiming due messages failed"))).toContainEqual(expect.objectContaining({ level: 50, channel: "sms", err: expect.stringContaining("locked") }));
      expect(b.clock.delays).toContain(5);
    } finally {
      other.run("ROLLBACK");
      other.close();
    }
    b.clock.advance(5);
    await b.settled();
    expect((await b.state(id)).attempts).toBe(1);
  });
});

describe("a claim the database refused", () => {
  test("leaves the lane looking: the next submit to end claims again at once", async () => {
    const { Database } = await import("bun:sqlite");
    const { startMmscStub } = await import("../peers/mm7-stub.ts");
    const held: (() => void)[] = [];
    const stub = await startMmscStub({ scenario: () => new Promise((resolve) => held.push(() => resolve({ kind: "ok" }))) });
    try {
      const b = await bed({ config: { carriers: { mms: { kind: "mm7", url: stub.url, username: "v", password: "p" } }, inbound: { mm7: { path: "/mm7", username: "mmsc", password: "in-secret" } } } });
      await b.accept("mms", "0012025550520");
      b.dispatcher.wake("mms");
      await waitFor("the first at the MMSC", () => held.length === 1);
      await b.accept("mms", "0012025550521");
      b.store.db.run("PRAGMA busy_timeout = 20");
      const other = new Database(b.store.db.filename);
      other.run("BEGIN IMMEDIATE");
      b.dispatcher.wake("mms");
      await waitFor("the claim refused", () => b.lines.some((l) => l.msg.startsWith("claiming due messages failed")));
      await waitFor("its poll planned", () => b.clock.timers.size === 1);
      other.run("ROLLBACK");
      other.close();
      held.shift()!();
      // Without moving the clock: the first submit's end claims the second message.
      await waitFor("the second at the MMSC", () => held.length === 1);
      held.shift()!();
      expect(b.claims.filter((c) => c.channel === "mms").map((c) => c.got)).toEqual([1, 0, 1]);
    } finally {
      for (const release of held) release();
      await stub.stop();
    }
  });
});
