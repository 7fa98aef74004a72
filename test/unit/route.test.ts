// Routing decisions, pure: route lookup, the carrier chosen now, where a message may go after an
// attempt, MO ownership, and the router's skipping and failback with a stubbed clock.
import { describe, expect, test } from "bun:test";
import type { CarrierHealth } from "../../adapters/carrier.ts";
import { afterAttempt, carrierReadiness, chooseCarrier, digitsOf, inboundOwner, RouteTable, type RouteRule } from "../../src/domain/route.ts";
import type { StoredMessage } from "../../src/domain/message.ts";
import { Router } from "../../src/pipeline/router.ts";
import { seeded } from "../support/random.ts";

const rule = (r: Partial<RouteRule> & Pick<RouteRule, "carriers">): RouteRule => ({ channel: "sms", prefixes: [], accounts: [], retry_elsewhere: ["temporary"], ...r });
const free = { pinned: null, refused: [] };

describe("RouteTable", () => {
  const table = new RouteTable(
    [
      rule({ prefixes: ["44"], carriers: ["uk_a", "uk_b"] }),
      rule({ accounts: ["beta"], carriers: ["beta_smsc"] }),
      rule({ channel: "mms", prefixes: ["1"], carriers: ["us_mmsc"] }),
    ],
    { mms: "mms", sms: "sms" },
  );

  test("first match by prefix (after + or 00), then by account; no match → the channel's default, which has nowhere else to go", () => {
    expect(table.lookup("sms", "acme", "+447700900123").carriers).toEqual(["uk_a", "uk_b"]);
    expect(table.lookup("sms", "beta", "00447700900123").carriers).toEqual(["uk_a", "uk_b"]);
    expect(table.lookup("sms", "beta", "12025550123").carriers).toEqual(["beta_smsc"]);
    expect(table.lookup("sms", "acme", "12025550123")).toEqual({ carriers: ["sms"], elsewhereOnTemporary: false, elsewhereOnPermanent: false });
    expect(table.lookup("mms", "acme", "12025550123").carriers).toEqual(["us_mmsc"]);
    expect(table.lookup("mms", "acme", "447700900123").carriers).toEqual(["mms"]);
  });

  test("the prefix index finds the same route as testing each route in order (seeded random tables)", () => {
    const random = seeded(7);
    const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)]!;
    const digits = (n: number) => Array.from({ length: n }, () => pick(["1", "2", "3", "4"])).join("");
    for (let round = 0; round < 50; round++) {
      const rules = Array.from({ length: 1 + Math.floor(random() * 30) }, (_, i) =>
        rule({
          prefixes: random() < 0.3 ? [] : Array.from({ length: 1 + Math.floor(random() * 3) }, () => digits(1 + Math.floor(random() * 3))),
          accounts: random() < 0.6 ? [] : [pick(["a", "b", "c"])],
          carriers: [`r${i}`],
        }),
      );
      const table = new RouteTable(rules, { mms: "mms", sms: "default" });
      for (let k = 0; k < 40; k++) {
        const to = `+${digits(6)}`;
        const account = pick(["a", "b", "c", "d"]);
        const naive = rules.find((r) => (r.accounts.length === 0 || r.accounts.includes(account)) && (r.prefixes.length === 0 || r.prefixes.some((p) => to.slice(1).startsWith(p))));
        expect(table.lookup("sms", account, to).carriers).toEqual(naive?.carriers ?? ["default"]);
      }
    }
  });

  test("digitsOf strips one leading + or 00 and anything not a digit", () => {
    expect(digitsOf("+44 7700-900")).toBe("447700900");
    expect(digitsOf("0044")).toBe("44");
    expect(digitsOf("044")).toBe("044");
  });
});

describe("chooseCarrier and afterAttempt", () => {
  const route = { carriers: ["a", "b", "c"], elsewhereOnTemporary: true, elsewhereOnPermanent: true };

  test("the first available wins; a pinned carrier is kept whatever its health; refused ones are passed over", () => {
    expect(chooseCarrier(route, free, () => true)).toBe("a");
    expect(chooseCarrier(route, free, (c) => c !== "a")).toBe("b");
    expect(chooseCarrier(route, { pinned: "a", refused: [] }, (c) => c !== "a")).toBe("a");
    expect(chooseCarrier(route, { pinned: null, refused: ["a"] }, () => true)).toBe("b");
    // None available: the first eligible takes it and its temporary answer sends it round the retry loop.
    expect(chooseCarrier(route, { pinned: null, refused: ["a"] }, () => false)).toBe("b");
  });

  test("in doubt stays; definite temporary moves only if the route allows; permanent moves only while a carrier is left", () => {
    expect(afterAttempt(route, free, "a", { kind: "temporary", inDoubt: true })).toEqual({ pin: true, elsewhere: false });
    expect(afterAttempt(route, free, "a", { kind: "temporary" })).toEqual({ pin: false, elsewhere: false });
    expect(afterAttempt({ ...route, elsewhereOnTemporary: false }, free, "a", { kind: "temporary" })).toEqual({ pin: true, elsewhere: false });
    expect(afterAttempt(route, free, "a", { kind: "permanent" })).toEqual({ pin: false, elsewhere: true });
    expect(afterAttempt(route, { pinned: null, refused: ["a", "b"] }, "c", { kind: "permanent" })).toEqual({ pin: false, elsewhere: false });
    expect(afterAttempt({ ...route, elsewhereOnPermanent: false }, free, "a", { kind: "permanent" })).toEqual({ pin: false, elsewhere: false });
    expect(afterAttempt(route, free, "a", { kind: "ok" })).toEqual({ pin: false, elsewhere: false });
  });
});

describe("inboundOwner", () => {
  const a = { id: "a", inbound_numbers: ["1888*", "18885550100"] };
  const b = { id: "b", inbound_numbers: ["188855*", "+4477009*"] };
  test("exact beats prefix, longer prefix beats shorter, + and 00 are ignored, unowned → null", () => {
    expect(inboundOwner([a, b], "18885550100")?.id).toBe("a");
    expect(inboundOwner([a, b], "18885550101")?.id).toBe("b");
    expect(inboundOwner([a, b], "18880000000")?.id).toBe("a");
    expect(inboundOwner([a, b], "00447700912")?.id).toBe("b");
    expect(inboundOwner([a, b], "33123")).toBeNull();
  });
});

describe("Router", () => {
  const message = (to: string): StoredMessage =>
    ({ id: "m", accountId: "acme", channel: "sms", payload: { to }, carrier: null, pinned: null, refused: [] }) as unknown as StoredMessage;
  function setup() {
    let t = 1_000_000;
    const health = new Map<string, CarrierHealth["state"]>([["a", "up"], ["b", "up"]]);
    const failovers: string[] = [];
    const router = new Router({
      routes: new RouteTable([rule({ carriers: ["a", "b"] })], { mms: "mms", sms: "sms" }),
      state: (c) => health.get(c) ?? "up",
      failAfterErrors: 2,
      probeMs: 1000,
      now: () => t,
      onFailover: (from, to) => failovers.push(`${from}→${to}`),
    });
    return { router, health, failovers, advance: (ms: number) => (t += ms) };
  }

  test("a link that is down is skipped, probed once per interval, and gets traffic again once up (failback)", () => {
    const { router, health, failovers, advance } = setup();
    expect(router.choose(message("1"))).toBe("a");
    health.set("a", "down");
    // The first look at a down carrier is its probe; the next within the interval skips it.
    expect(router.choose(message("1"))).toBe("a");
    expect(router.choose(message("1"))).toBe("b");
    expect(router.choose(message("1"))).toBe("b");
    advance(1000);
    expect(router.choose(message("1"))).toBe("a");
    expect(router.choose(message("1"))).toBe("b");
    health.set("a", "up");
    expect(router.choose(message("1"))).toBe("a");
    expect(failovers).toEqual(["a→b", "a→b", "a→b"]);
  });

  test("a run of temporary answers skips a carrier whose link looks up; an accepted probe brings it back", () => {
    const { router, advance } = setup();
    const m = message("1");
    router.after(m, "a", { kind: "temporary", code: "x", message: "" });
    expect(router.choose(m)).toBe("a");
    router.after(m, "a", { kind: "temporary", code: "x", message: "", inDoubt: true });
    expect(router.choose(m)).toBe("b");
    advance(1000);
    expect(router.choose(m)).toBe("a");
    router.after(m, "a", { kind: "ok", carrierMessageIds: ["1"] });
    expect(router.choose(m)).toBe("a");
    expect(router.choose(m)).toBe("a");
  });

  test("failures while the link is down do not count: the carrier is used again as soon as it re-binds", () => {
    const { router, health } = setup();
    const m = message("1");
    health.set("a", "down");
    for (let i = 0; i < 5; i++) router.after(m, "a", { kind: "temporary", code: "smpp:not-bound", message: "" });
    expect(router.choose(m)).toBe("b");
    health.set("a", "up");
    expect(router.choose(m)).toBe("a");
    expect(router.skipped("a")).toBe(false);
  });

  test("a carrier whose submits cannot go out is passed over", () => {
    let t = 0;
    const router = new Router({
      routes: new RouteTable([rule({ carriers: ["a", "b"] })], { mms: "mms", sms: "sms" }),
      state: (c) => (c === "a" ? "down" : "up"),
      failAfterErrors: 2,
      probeMs: 1000,
      now: () => t,
    });
    router.choose(message("1")); // a's probe
    expect(router.choose(message("1"))).toBe("b");
  });

  test("a carrier whose binds other nodes hold: the message is left for them, not failed over", () => {
    const standby = new Set(["a"]);
    const failovers: string[] = [];
    const router = new Router({
      routes: new RouteTable([rule({ carriers: ["a", "b"] })], { mms: "mms", sms: "sms" }),
      state: (c) => (standby.has(c) ? "standby" : "up"),
      standby: (c) => standby.has(c),
      failAfterErrors: 2,
      probeMs: 1000,
      now: () => 0,
      onFailover: (from, to) => failovers.push(`${from}→${to}`),
    });
    expect(router.choose(message("1"))).toBeNull();
    expect(router.choose({ ...message("1"), pinned: "b" })).toBe("b");
    expect(failovers).toEqual([]);
    standby.clear();
    expect(router.choose(message("1"))).toBe("a");
  });
});

describe("carrierReadiness", () => {
  const groups = [["mms"], ["sms"], ["uk_a", "uk_b"]];
  const link = (carrier: string, down: boolean) => ({ carrier, problem: down ? `carrier ${carrier}: down` : null });

  test("a link down behind a working backup is degraded, not unready", () => {
    expect(carrierReadiness([link("mms", false), link("sms", false), link("uk_a", true), link("uk_b", false)], groups)).toEqual({
      unready: [],
      degraded: ["carrier uk_a: down"],
    });
  });

  test("every carrier of one group down → unready, naming each", () => {
    expect(carrierReadiness([link("mms", false), link("sms", false), link("uk_a", true), link("uk_b", true)], groups).unready).toEqual([
      "carrier uk_a: down",
      "carrier uk_b: down",
    ]);
  });

  test("a channel's default carrier alone, or a carrier routed nowhere, is unready when down (as with one carrier)", () => {
    expect(carrierReadiness([link("sms", true), link("spare", true)], groups)).toEqual({ unready: ["carrier sms: down", "carrier spare: down"], degraded: [] });
  });

  test("a carrier also serving as another route's only carrier makes that route unready", () => {
    const r = carrierReadiness([link("uk_a", false), link("uk_b", true)], [...groups, ["uk_b"]]);
    expect(r).toEqual({ unready: ["carrier uk_b: down"], degraded: [] });
  });
});
