// The dispatcher alone on a fake clock (test/support/dispatcher-bed.ts): which claims its wakes make, how
// much it claims, when it polls, what it counts and logs, and what it does with each kind of carrier answer.
import { afterEach, describe, expect, test } from "bun:test";
import { dispatcherBed, type Bed } from "../support/dispatcher-bed.ts";
import { tempDir, waitFor } from "../support/app.ts";

const lastError = (b: Bed, id: string) => JSON.parse((b.store.db.query("SELECT last_error FROM messages WHERE id = ?").get(id) as { last_error: string }).last_error);

let beds: Bed[] = [];
afterEach(async () => {
  for (const b of beds) await b.stop();
  beds = [];
});
async function bed(...a: Parameters<typeof dispatcherBed>): Promise<Bed> {
  const b = await dispatcherBed(...a);
  beds.push(b);
  return b;
}

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
    const dir = (await import("../support/app.ts")).tempDir();
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

describe("what each answer does", () => {
  test("counted by carrier and outcome, retries counted, latency observed, each answer told and logged", async () => {
    const told: string[] = [];
    const b = await bed({ deps: { onSubmitted: (c, o) => told.push(`${c}:${o}`) } });
    const ok = await b.accept("sms", "0012025550600");
    const temp = await b.accept("sms", "0012025550601");
    const perm = await b.accept("sms", "0012025550602");
    b.dispatcher.start();
    await b.settled();
    expect(await b.counter("gateway_submissions_total", { carrier: "sms", outcome: "ok" })).toBe(1);
    expect(await b.counter("gateway_submissions_total", { carrier: "sms", outcome: "temporary" })).toBe(1);
    expect(await b.counter("gateway_submissions_total", { carrier: "sms", outcome: "permanent" })).toBe(1);
    expect(await b.counter("gateway_retries_total", { carrier: "sms" })).toBe(1);
    const latency = await b.metrics.registry.getSingleMetric("gateway_submit_seconds")!.get();
    expect(latency.values.find((v) => (v as { metricName?: string }).metricName === "gateway_submit_seconds_count" && v.labels.carrier === "sms")?.value).toBe(3);
    expect(told.sort()).toEqual(["sms:ok", "sms:permanent", "sms:temporary"]);
    const okMessage = await b.state(ok);
    expect(b.lines.find((l) => l.msg === "submitted")).toMatchObject({ level: 20, messageId: ok, requestId: okMessage.requestId, carrier: "sms", carrierIds: [expect.stringMatching(/^sbx-sms-/)] });
    const refused = b.lines.filter((l) => l.msg === "submit not accepted");
    expect(refused).toContainEqual(expect.objectContaining({ level: 30, messageId: temp, carrier: "sms", outcome: "temporary", code: "sandbox:busy", reason: expect.stringContaining("scenario 01") }));
    expect(refused).toContainEqual(expect.objectContaining({ level: 30, messageId: perm, carrier: "sms", outcome: "permanent", code: "sandbox:rejected" }));
    expect((await b.state(perm)).state).toBe("failed");
    expect(b.finals).toBe(1);
  });

  test("a message whose carrier left the configuration (or is of the other channel) waits for it: temporary gateway:no_such_carrier", async () => {
    const b = await bed();
    const gone = await b.accept("sms", "0012025550610");
    const claimDue = b.store.claimDue;
    const sms = b.carriers.byName.get("sms")!;
    let turn = 0;
    b.store.claimDue = async (channel, limit, assign) => {
      const got = await claimDue(channel, limit, assign);
      if (channel === "sms" && got.length > 0) {
        // Between the claim and the submit, as a SIGHUP may: first removed, then an MMS carrier by that name.
        if (turn++ === 0) b.carriers.byName.delete("sms");
        else b.carriers.byName.set("sms", b.carriers.byName.get("mms")!);
      }
      return got;
    };
    b.dispatcher.start();
    await b.settled();
    let m = await b.state(gone);
    expect(m.state).toBe("accepted");
    expect(lastError(b, gone)).toMatchObject({ code: "gateway:no_such_carrier" });
    expect(await b.counter("gateway_submissions_total", { carrier: "sms", outcome: "temporary" })).toBe(1);
    b.clock.advance(b.clock.delays.at(-1)!);
    await b.settled();
    m = await b.state(gone);
    expect(m.attempts).toBe(2);
    expect(lastError(b, gone)).toMatchObject({ code: "gateway:no_such_carrier" });
    b.carriers.byName.set("sms", sms);
  });
});

describe("fallbacks and storage trouble", () => {
  test("a fallback wakes the SMS lane at once: from a receipt, and from a number remembered as unable to take MMS", async () => {
    const b = await bed();
    const first = await b.accept("mms", "0012025550703"); // sandbox 03: the receipt says no MMS
    b.dispatcher.start();
    const smsSent = () => b.counter("gateway_submissions_total", { carrier: "sms", outcome: "ok" });
    await waitFor("the fallback SMS sent", async () => (await smsSent()) === 1);
    expect((await b.state(first)).channel).toBe("sms");
    await b.settled();
    const second = await b.accept("mms", "0012025550703");
    const finals = b.finals;
    b.dispatcher.wake("mms");
    await waitFor("the second fallback SMS sent", async () => (await smsSent()) === 2);
    expect((await b.state(second)).channel).toBe("sms");
    expect(b.finals).toBeGreaterThan(finals);
    expect(b.lines).toContainEqual(expect.objectContaining({ msg: "submit not accepted", messageId: second, carrier: "mms", outcome: "permanent", code: "capability:no_mms" }));
    // Neither took a poll: the clock never moved.
    expect(b.clock.t).toBe(1_700_000_000_000);
  });

  test("an answer the database refuses is stored once it takes writes again (100 ms, then 200 ms on); stopping gives up the second time", async () => {
    const { Database } = await import("bun:sqlite");
    const { startMmscStub } = await import("../peers/mm7-stub.ts");
    const held: (() => void)[] = [];
    const stub = await startMmscStub({ scenario: () => new Promise((resolve) => held.push(() => resolve({ kind: "ok" }))) });
    try {
      const b = await bed({ config: { carriers: { mms: { kind: "mm7", url: stub.url, username: "v", password: "p" } }, inbound: { mm7: { path: "/mm7", username: "mmsc", password: "in-secret" } } } });
      const ids = [await b.accept("mms", "0012025550710"), await b.accept("mms", "0012025550711")];
      b.dispatcher.start();
      await waitFor("both at the MMSC", () => held.length === 2);
      b.store.db.run("PRAGMA busy_timeout = 20");
      const other = new Database(b.store.db.filename);
      other.run("BEGIN IMMEDIATE");
      held.shift()!();
      await waitFor("a first retry planned", () => b.clock.slept.length === 1);
      b.clock.advance(100);
      await waitFor("a second retry planned", () => b.clock.slept.length === 2);
      expect(b.clock.slept).toEqual([100, 200]);
      const refused = b.lines.filter((l) => l.msg === "could not store the submit answer; retrying");
      expect(refused).toHaveLength(2);
      // The MMSC may have answered either first.
      const kept = refused[0]!.messageId as string;
      const lost = ids.find((id) => id !== kept)!;
      expect(refused[1]).toMatchObject({ level: 50, messageId: kept, requestId: (await b.state(kept)).requestId, carrier: "mms", err: expect.stringContaining("locked") });
      other.run("ROLLBACK");
      b.clock.advance(200);
      await waitFor("the answer stored", async () => (await b.state(kept)).state === "submitted");
      // Stopping: the answer is still tried twice (once more after 100 ms), then given up.
      other.run("BEGIN IMMEDIATE");
      const stopped = b.dispatcher.stop(60_000);
      held.shift()!();
      await waitFor("its retry planned", () => b.clock.slept.length === 4);
      expect(b.clock.slept).toEqual([100, 200, 60_000, 100]);
      expect(b.lines.filter((l) => l.msg === "could not store the submit answer; retrying" && l.messageId === lost)).toHaveLength(1);
      b.clock.advance(100);
      await stopped;
      other.run("ROLLBACK");
      other.close();
      expect(b.lines).toContainEqual(expect.objectContaining({ msg: "submit bookkeeping failed", level: 50, messageId: lost, err: expect.stringContaining("storage unavailable") }));
      expect((await b.state(lost)).state).toBe("submitting");
    } finally {
      for (const release of held) release();
      await stub.stop();
    }
  });
});

describe("media", () => {
  function mediaServer(png: Uint8Array) {
    return Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => {
        const path = new URL(req.url).pathname;
        if (path === "/busy.png") return new Response("busy", { status: 503 });
        if (path === "/gone.png") return new Response("gone", { status: 404 });
        return new Response(png, { headers: { "Content-Type": "image/png" } });
      },
    });
  }

  test("media that cannot be had is not the carrier's fault: a temporary failure retries without counting against it, a permanent one goes to the fallback", async () => {
    const { largePng } = await import("../support/images.ts");
    const server = mediaServer(await largePng(40, 30));
    try {
      const b = await bed({ config: { delivery: { failover_after_errors: 1 } } });
      const url = (p: string) => `http://127.0.0.1:${server.port}${p}`;
      const busy = await b.accept("mms", "0012025550820", { media: [{ url: url("/ok.png") }, { url: url("/busy.png") }] });
      b.dispatcher.start();
      await b.settled();
      expect(lastError(b, busy)).toMatchObject({ code: "media:http_503" });
      expect((await b.state(busy)).state).toBe("accepted");
      expect(b.router.skipped("mms")).toBe(false);
      expect((await b.state(busy)).pinned).toBe(null);
      expect(await b.counter("gateway_retries_total", { carrier: "mms" })).toBe(1);
      const gone = await b.accept("mms", "0012025550821", { media: [{ url: url("/gone.png") }] });
      b.dispatcher.wake("mms");
      await waitFor("the fallback SMS sent", async () => (await b.counter("gateway_submissions_total", { carrier: "sms", outcome: "ok" })) === 1);
      expect((await b.state(gone)).channel).toBe("sms");
      expect(b.lines).toContainEqual(expect.objectContaining({ msg: "submit not accepted", messageId: gone, outcome: "permanent", code: "media:http_404" }));
      const fine = await b.accept("mms", "0012025550822", { media: [{ url: url("/ok.png") }] });
      b.dispatcher.wake("mms");
      await waitFor("the MMS with its media submitted", async () => ["submitted", "delivered"].includes((await b.state(fine)).state));
    } finally {
      server.stop(true);
    }
  });

  test("media adapted to the carrier's limit is what is sent; media that cannot fit goes to the fallback", async () => {
    const { largePng } = await import("../support/images.ts");
    const { startMmscStub } = await import("../peers/mm7-stub.ts");
    const png = await largePng(600, 400);
    const server = mediaServer(png);
    const stub = await startMmscStub({ maxMessageBytes: 60_000 });
    try {
      const b = await bed({ config: { carriers: { mms: { kind: "mm7", url: stub.url, username: "v", password: "p", max_message_bytes: 60_000 } }, inbound: { mm7: { path: "/mm7", username: "mmsc", password: "in-secret" } } } });
      expect(png.byteLength).toBeGreaterThan(60_000);
      const url = `http://127.0.0.1:${server.port}/big.png`;
      const fitted = await b.accept("mms", "0012025550810", { media: [{ url }] });
      b.dispatcher.start();
      await waitFor("the adapted MMS answered", async () => !["accepted", "submitting"].includes((await b.state(fitted)).state));
      expect((await b.state(fitted)).state).toBe("submitted");
      expect(stub.errors).toEqual([]);
      expect(stub.received).toHaveLength(1);
      expect(stub.received[0]!.media.map((p) => p.contentType)).toEqual([expect.stringMatching(/^image\//)]);
      const unfit = await b.accept("mms", "0012025550811", { media: [{ url }], text: "x".repeat(59_000) });
      b.dispatcher.wake("mms");
      await waitFor("the fallback SMS sent", async () => (await b.counter("gateway_submissions_total", { carrier: "sms", outcome: "ok" })) === 1);
      expect((await b.state(unfit)).channel).toBe("sms");
      expect(b.lines).toContainEqual(expect.objectContaining({ msg: "submit not accepted", messageId: unfit, outcome: "permanent", code: expect.stringMatching(/^media:/) }));
      expect(stub.received).toHaveLength(1);
    } finally {
      server.stop(true);
      await stub.stop();
    }
  });
});

describe("carriers", () => {
  test("a submit waiting at a carrier that SIGHUP replaced goes to the replacement, once; the one in flight is not resent", async () => {
    const { startMmscStub } = await import("../peers/mm7-stub.ts");
    const { testConfig } = await import("../support/app.ts");
    const held: (() => void)[] = [];
    const stub = await startMmscStub({ scenario: () => new Promise((resolve) => held.push(() => resolve({ kind: "ok" }))) });
    try {
      const inbound = { mm7: { path: "/mm7", username: "mmsc", password: "in-secret" } };
      const b = await bed({ config: { carriers: { mms: { kind: "mm7", url: stub.url, username: "v", password: "p", concurrency: 1 } }, inbound }, deps: { concurrency: { mms: 2, sms: 1 } } });
      const ids = [await b.accept("mms", "0012025550910"), await b.accept("mms", "0012025550911")];
      b.dispatcher.start();
      await waitFor("one at the MMSC, one waiting for its gate", () => held.length === 1 && b.dispatcher.busy() === 2);
      const { drained } = await b.carriers.reload(testConfig(tempDir(), { carriers: { mms: { kind: "sandbox", sandbox_report_delay_ms: 5 } } }), 0);
      await drained;
      await b.settled();
      const states = await Promise.all(ids.map((id) => b.state(id)));
      // The one on the wire is in doubt (at most once: failed, never resent); the waiting one went to the sandbox.
      expect(states.map((m) => m.attempts)).toEqual([1, 1]);
      expect(stub.received).toHaveLength(1);
      expect(await b.counter("gateway_submissions_total", { carrier: "mms", outcome: "ok" })).toBe(1);
      expect(await b.counter("gateway_submissions_total", { carrier: "mms", outcome: "temporary" })).toBe(1);
      expect(b.lines.find((l) => l.msg === "submitted")).toMatchObject({ carrierIds: [expect.stringMatching(/^sbx-mms-/)] });
    } finally {
      for (const release of held) release();
      await stub.stop();
    }
  });

  test("an SMS carries its text, a fallback SMS the fallback text, from and to as given", async () => {
    const { startSmsc } = await import("../peers/smpp-sim.ts");
    const smsc = await startSmsc();
    try {
      const b = await bed({ config: { carriers: { sms: { kind: "smpp", host: "127.0.0.1", port: smsc.port, system_id: "gw", password: "pw" } } } });
      await waitFor("SMPP bound", () => smsc.openSessions > 0);
      await b.accept("sms", "0012025550920", { text: "plain text", fallback_text: "not this" });
      await b.accept("mms", "0012025550903", { text: "the MMS text", fallback_text: "the fallback text" });
      b.dispatcher.start();
      await waitFor("both SMS at the SMSC", () => smsc.submits.length === 2);
      expect(smsc.submits.map((x) => [x.sourceAddr, x.destAddr.slice(-4), x.body.toString("latin1")]).sort()).toEqual([
        ["18885551234", "0903", "the fallback text"],
        ["18885551234", "0920", "plain text"],
      ]);
    } finally {
      await smsc.stop();
    }
  });
});

describe("on the real clock (the default)", () => {
  test("a retry is polled for when its backoff ends, and stop() waits for a claim under way", async () => {
    const b = await bed({ realClock: true });
    const retried = await b.accept("sms", "0012025550501"); // sandbox 01: refused once, for 100 ms
    b.dispatcher.start();
    await waitFor("the retry sent", async () => (await b.state(retried)).attempts === 2);
    const id = await b.accept("sms", "0012025550530");
    b.dispatcher.wake("sms");
    await b.dispatcher.stop(60_000);
    expect(["submitted", "delivered"]).toContain((await b.state(id)).state);
  });
});

describe("a submit that throws", () => {
  test("is a temporary gateway:adapter_error, not a lost message (here: the fallback text's media page cannot be written)", async () => {
    const { Database } = await import("bun:sqlite");
    const { largePng } = await import("../support/images.ts");
    const png = await largePng(40, 30);
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(png, { headers: { "Content-Type": "image/png" } }) });
    try {
      const b = await bed({ config: { media_link: { base_url: "https://m.example.com" } } });
      const id = await b.accept("mms", "0012025550603", { media: [{ url: `http://127.0.0.1:${server.port}/a.png` }] }); // sandbox 03: no MMS
      b.store.db.run("PRAGMA busy_timeout = 20");
      const other = new Database(b.store.db.filename);
      const claimDue = b.store.claimDue;
      b.store.claimDue = async (channel, limit, assign) => {
        const got = await claimDue(channel, limit, assign);
        // The fallback SMS is claimed; its link's page is written as its text is made: refused.
        if (channel === "sms" && got.length > 0 && !other.inTransaction) other.run("BEGIN IMMEDIATE");
        return got;
      };
      b.dispatcher.start();
      await waitFor("the answer's write refused", () => b.clock.slept.length === 1);
      other.run("ROLLBACK");
      other.close();
      b.clock.advance(100);
      await waitFor("the answer stored", async () => (await b.counter("gateway_submissions_total", { carrier: "sms", outcome: "temporary" })) === 1 && (await b.state(id)).state === "accepted");
      expect(lastError(b, id)).toMatchObject({ code: "gateway:adapter_error", message: expect.stringContaining("storage unavailable") });
    } finally {
      server.stop(true);
    }
  });
});
