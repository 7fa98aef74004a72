// When the outbox runs its rounds, seen through a fake round timer the test fires by hand (the store, the
// sink and the POSTs are real): the delay each round asks for next, which timer a wake keeps or replaces,
// a wake during a round, stop; and what a round stopped or a write refused leaves behind.
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { realTimers } from "../../src/pipeline/outbox.ts";
import { waitFor } from "../support/app.ts";
import { FakeTimers, gate, realPost, rig, runRigCleanup } from "../support/outbox-rig.ts";

afterEach(runRigCleanup);

/**
 * Fires the next timer and waits for the round to end; returns the delay it asked for then (the first timer
 * set after firing: a batch it started ends only after its POST, later than the round's own microtasks).
 */
async function round(fake: FakeTimers): Promise<number> {
  const n = fake.delays.length;
  fake.fire();
  await waitFor("the round to end", () => fake.delays.length > n);
  return fake.delays[n]!;
}

/** A POST that waits for `held` when its URL ends with `suffix` (every POST when none). */
function heldPost(held: ReturnType<typeof gate>, suffix = "") {
  return async (url: string, headers: Record<string, string>, body: string, timeoutMs: number) => {
    if (url.endsWith(suffix)) await held.wait();
    return realPost(url, headers, body, timeoutMs);
  };
}

describe("the delay a round asks for next", () => {
  test("start runs a round at once; with nothing due the next is the idle second", async () => {
    const fake = new FakeTimers();
    const r = rig({ timers: fake });
    r.outbox.start();
    expect(fake.delays).toEqual([0]);
    expect(await round(fake)).toBe(1000);
  });

  test("one event sent and nothing left: the idle second", async () => {
    const fake = new FakeTimers();
    const held = gate();
    const r = rig({ timers: fake, post: heldPost(held) });
    await r.event(r.sink.url, 1);
    r.outbox.start();
    expect(await round(fake)).toBe(1000);
    await waitFor("the POST", () => held.reached === 1);
    held.open();
  });

  test("events left over for want of concurrency: the next round at once; with none free, the idle second", async () => {
    const fake = new FakeTimers();
    const held = gate();
    const r = rig({ timers: fake, post: heldPost(held), settings: { concurrency: 1 } });
    const ids = [await r.event(`${r.sink.url}/a`, 1), await r.event(`${r.sink.url}/b`, 2)];
    r.outbox.start();
    expect(await round(fake)).toBe(0);
    expect(await round(fake)).toBe(1000);
    await waitFor("the POST", () => held.reached === 1);
    expect(r.posted.map((p) => new URL(p.url).pathname)).toEqual(["/callback/a"]);
    held.open();
    // The batch's end wakes the outbox at once.
    await waitFor("the first batch to end", () => fake.delays.length === 4);
    expect(fake.delays).toEqual([0, 0, 1000, 0]);
    await round(fake);
    await waitFor("both delivered", () => ids.every((id) => r.row(id).state === "delivered"));
  });

  test("a read as long as its limit (there may be more): the next round at once", async () => {
    const fake = new FakeTimers();
    const held = gate();
    const r = rig({ timers: fake, post: heldPost(held), settings: { concurrency: 1, batch_max_events: 2 } });
    for (let n = 0; n < 3; n++) await r.event(r.sink.url, n);
    r.outbox.start();
    expect(await round(fake)).toBe(0);
    await waitFor("the POST", () => held.reached === 1);
    expect(JSON.parse(r.posted[0]!.body)).toHaveLength(2);
    held.open();
  });

  test("a batch full before its URL's events ran out (a read short of its limit): the next round at once", async () => {
    const fake = new FakeTimers();
    const held = gate();
    const r = rig({ timers: fake, post: heldPost(held), settings: { concurrency: 2, batch_max_events: 2 } });
    for (let n = 0; n < 3; n++) await r.event(r.sink.url, n);
    r.outbox.start();
    expect(await round(fake)).toBe(0);
    await waitFor("the POST", () => held.reached === 1);
    expect(JSON.parse(r.posted[0]!.body)).toHaveLength(2);
    held.open();
  });

  test("the next round when a retry falls due, at most the idle second away", async () => {
    const fake = new FakeTimers();
    const r = rig({ timers: fake });
    r.sink.answer = 503;
    const id = await r.event(r.sink.url, 1);
    r.outbox.start();
    expect(await round(fake)).toBe(1000);
    // The batch's end (a retry in 750 ms) replaces the idle timer with one at once.
    await waitFor("the retry to be stored", () => fake.delays.length === 3);
    expect(r.row(id)).toMatchObject({ attempts: 1, due_at: r.clock.t + 750 });
    expect(await round(fake)).toBe(750);
    r.clock.t += 750;
    expect(await round(fake)).toBe(1000);
    await waitFor("the second retry to be stored", () => fake.delays.length === 6);
    expect(r.row(id)).toMatchObject({ attempts: 2, due_at: r.clock.t + 1500 });
    expect(await round(fake)).toBe(1000);
    expect(fake.delays).toEqual([0, 1000, 0, 750, 1000, 0, 1000]);
  });

  test("with every slot taken, a round reads nothing and waits the idle second, even with a retry due sooner", async () => {
    const fake = new FakeTimers();
    const held = gate();
    const r = rig({ timers: fake, post: heldPost(held, "/y"), settings: { concurrency: 1 } });
    r.sink.answer = 503;
    await r.event(`${r.sink.url}/x`, 1);
    r.outbox.start();
    await round(fake);
    await waitFor("x's retry to be stored", () => fake.delays.length === 3);
    r.sink.answer = 200;
    await r.event(`${r.sink.url}/y`, 2);
    expect(await round(fake)).toBe(750);
    await waitFor("y's POST", () => held.reached === 1);
    r.outbox.wake(0);
    expect(await round(fake)).toBe(1000);
    expect(fake.delays).toEqual([0, 1000, 0, 750, 0, 1000]);
    held.open();
  });
});

describe("which timer a wake keeps", () => {
  test("one due as soon or sooner is kept; a later one is replaced", async () => {
    const fake = new FakeTimers();
    const r = rig({ timers: fake });
    r.outbox.start();
    r.outbox.wake(5);
    r.outbox.wake(0);
    expect([fake.delays, fake.dues, fake.cleared]).toEqual([[0], [0], 0]);
    await round(fake);
    expect(fake.dues).toEqual([1000]);
    r.outbox.wake(5);
    expect([fake.delays, fake.dues, fake.cleared]).toEqual([[0, 1000, 5], [5], 1]);
    r.outbox.wake(5);
    fake.at += 3;
    r.outbox.wake(2);
    expect([fake.delays, fake.dues, fake.cleared]).toEqual([[0, 1000, 5], [5], 1]);
    r.outbox.wake(1);
    expect([fake.delays, fake.dues, fake.cleared]).toEqual([[0, 1000, 5, 1], [4], 2]);
    // The default wait is batch_max_wait_ms (5 here).
    await round(fake);
    r.outbox.wake();
    expect(fake.dues).toEqual([fake.at + 5]);
  });

  test("a wake during a round sets no timer; the round then asks for the batching wait, not the idle second", async () => {
    const fake = new FakeTimers();
    const r = rig({ timers: fake });
    const reading = gate();
    const dueEvents = r.store.dueEvents.bind(r.store);
    r.store.dueEvents = async (...a) => (await reading.wait(), dueEvents(...a));
    r.outbox.start();
    fake.fire();
    await waitFor("the round to read", () => reading.reached === 1);
    r.outbox.wake();
    expect(fake.delays).toEqual([0]);
    reading.open();
    await waitFor("the round to end", () => fake.delays.length === 2);
    expect(fake.delays).toEqual([0, 5]);
    // The wake was for that one round only.
    expect(await round(fake)).toBe(1000);
  });

  test("stop clears the pending timer, and a wake after it sets none", async () => {
    const fake = new FakeTimers();
    const r = rig({ timers: fake });
    r.outbox.start();
    await r.outbox.stop(30_000);
    expect([fake.dues, fake.cleared]).toEqual([[], 1]);
    r.outbox.wake(0);
    expect(fake.delays).toEqual([0]);
    // Stopped before it ever started: no timer to reuse, and still none is set.
    const fake2 = new FakeTimers();
    const r2 = rig({ timers: fake2 });
    await r2.outbox.stop(30_000);
    r2.outbox.wake(0);
    r2.outbox.start();
    expect(fake2.delays).toEqual([]);
  });
});

describe("the real round timer", () => {
  test("fires, can be cleared, and reads the wall clock", async () => {
    const fired: string[] = [];
    const a = realTimers.set(() => fired.push("a"), 0);
    realTimers.set(() => fired.push("b"), 0);
    realTimers.clear(a);
    // Timers fire in the order of their due time: once c has, b (due no later) has too, and a never will.
    await new Promise<void>((res) => realTimers.set(() => (fired.push("c"), res()), 5));
    expect(fired).toEqual(["b", "c"]);
    const before = Date.now();
    const t = realTimers.now();
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
  });
});

describe("what is left behind", () => {
  test("stopped while a round reads: nothing is sent", async () => {
    const fake = new FakeTimers();
    const r = rig({ timers: fake });
    const id = await r.event(r.sink.url, 1);
    const reading = gate();
    const dueEvents = r.store.dueEvents.bind(r.store);
    let read: Promise<unknown> = Promise.resolve();
    r.store.dueEvents = (...a) => (read = reading.wait().then(() => dueEvents(...a))) as ReturnType<typeof dueEvents>;
    r.outbox.start();
    fake.fire();
    await waitFor("the round to read", () => reading.reached === 1);
    await r.outbox.stop(30_000);
    reading.open();
    await read;
    // The round goes on in this turn of the event loop; whatever it started, stop now waits for.
    await new Promise((res) => setImmediate(res));
    await r.outbox.stop(30_000);
    expect(r.posted).toHaveLength(0);
    expect(r.row(id)).toMatchObject({ state: "pending", attempts: 0 });
  });

  test("a round that cannot read the outbox logs it and tries again after the idle second", async () => {
    const fake = new FakeTimers();
    const r = rig({ timers: fake });
    const dueEvents = r.store.dueEvents.bind(r.store);
    let reads = 0;
    r.store.dueEvents = (...a) => (++reads === 1 ? dueEvents(...a).then(() => Promise.reject(new Error("disk gone"))) : dueEvents(...a));
    const id = await r.event(r.sink.url, 1);
    r.outbox.start();
    expect(await round(fake)).toBe(1000);
    expect(r.logs.map((l) => [l.msg, l.err])).toEqual([["outbox round failed; retrying", "disk gone"]]);
    await round(fake);
    await waitFor("the event to go on the next round", () => r.row(id).state === "delivered");
  });

  test("a batch's outcome that cannot be written is logged, and the events go again", async () => {
    const held = gate();
    const r = rig({ post: heldPost(held) });
    const ids = [await r.event(r.sink.url, 1), await r.event(r.sink.url, 2)];
    r.outbox.start();
    await waitFor("the POST to be held", () => held.reached === 1);
    r.store.db.run("PRAGMA busy_timeout = 20");
    const other = new Database(r.path);
    other.run("BEGIN IMMEDIATE");
    held.open();
    const line = await waitFor("the error line", () => r.logs.find((l) => l.msg === "could not record a webhook outcome; the events will be sent again"));
    expect(line.events).toBe(2);
    expect(line.err).toBeString();
    other.run("ROLLBACK");
    other.close();
    await waitFor("the events to be delivered", () => ids.every((id) => r.row(id).state === "delivered"));
    expect(r.sink.redelivered).toBeGreaterThan(0);
  });

  test("a batch mixing a retried event and a fresh one backs off by the most attempts in it", async () => {
    const fake = new FakeTimers();
    const r = rig({ timers: fake });
    r.sink.answer = 503;
    const retried = await r.event(r.sink.url, 1);
    r.outbox.start();
    await round(fake);
    await waitFor("the retry to be stored", () => r.row(retried).attempts === 1);
    r.clock.t += 750;
    const fresh = await r.event(r.sink.url, 2);
    await waitFor("the batch's end to wake the outbox", () => fake.delays.length === 3);
    await round(fake);
    await waitFor("the batch of both to be tried", () => r.row(fresh).attempts === 1);
    expect(r.posted.map((p) => (JSON.parse(p.body) as unknown[]).length)).toEqual([1, 2]);
    // attempts 2 for the batch: ceiling 2000 ms → 1500 ms, for both
    expect([r.row(retried), r.row(fresh)].map((x) => [x.attempts, x.due_at])).toEqual([
      [2, r.clock.t + 1500],
      [1, r.clock.t + 1500],
    ]);
  });
});
