// The dispatcher alone on a fake clock (test/support/dispatcher-bed.ts): what it counts and logs and what it
// does with each kind of carrier answer — refusals, fallbacks, media trouble, a refused write, a replaced
// carrier, a submit that throws — and the same on the real clock.
import { describe, expect, test } from "bun:test";
import { bedPerTest, lastError } from "../support/dispatcher-bed.ts";
import { tempDir, waitFor } from "../support/app.ts";

const bed = bedPerTest();

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
    expect(m.state).toBe("accepted");
    expect(lastError(b, gone)).toMatchObject({ code: "gateway:no_such_carrier" });
    b.carriers.byName.set("sms", sms);
  });
});

describe("routes", () => {
  test("the router hears every answer: a permanent refusal goes to the route's next carrier, temporary ones skip a carrier", async () => {
    const b = await bed({
      config: {
        carriers: { sms_b: { kind: "sandbox", name: "sms_b", channel: "sms", sandbox_report_delay_ms: 5 } },
        routes: [{ channel: "sms", prefixes: ["1202"], carriers: ["sms", "sms_b"], retry_elsewhere: ["permanent"] }],
        delivery: { failover_after_errors: 1 },
      },
    });
    const refused = await b.accept("sms", "0012025550602"); // sandbox 02 on both
    b.dispatcher.start();
    await waitFor("refused by both", async () => (await b.state(refused)).state === "failed");
    expect((await b.state(refused)).refused).toEqual(["sms"]);
    expect(await b.counter("gateway_submissions_total", { carrier: "sms_b", outcome: "permanent" })).toBe(1);
    await b.settled();
    await b.accept("sms", "0012025550601"); // sandbox 01: refused once
    b.dispatcher.wake("sms");
    await waitFor("the temporary answer", async () => (await b.counter("gateway_retries_total", { carrier: "sms" })) === 1);
    expect(b.router.skipped("sms")).toBe(true);
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
      // Counted on the way in (the call goes through): the second must have reached the MM7 carrier's gate.
      const mm7 = b.carriers.byName.get("mms")!.carrier;
      const submit = mm7.submit.bind(mm7);
      let calls = 0;
      mm7.submit = (m: Parameters<typeof submit>[0]) => (calls++, submit(m as never));
      b.dispatcher.start();
      await waitFor("one at the MMSC, one waiting for its gate", () => held.length === 1 && calls === 2);
      const { drained } = await b.carriers.reload(testConfig(tempDir(), { carriers: { mms: { kind: "sandbox", sandbox_report_delay_ms: 5 } } }), 0);
      await drained;
      await b.settled();
      const states = await Promise.all(ids.map((id) => b.state(id)));
      // The one on the wire is in doubt (at most once: failed, never resent); the waiting one went to the sandbox.
      expect(states.map((m) => m.attempts)).toEqual([1, 1]);
      const onWire = states.find((m) => stub.received[0]!.to[0]!.value.endsWith(m.payload.to.slice(-4)))!;
      const waited = states.find((m) => m !== onWire)!;
      expect(onWire.state).toBe("failed");
      expect(lastError(b, onWire.id)).toMatchObject({ code: "gateway:in_flight_unknown" });
      expect(["submitted", "delivered"]).toContain(waited.state);
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
