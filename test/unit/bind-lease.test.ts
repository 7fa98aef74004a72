import { describe, expect, test } from "bun:test";
import { tpsShare } from "../../adapters/smpp/smpp-carrier.ts";
import { decideBindHold, type BindSlot } from "../../src/domain/bind-lease.ts";

const slot = (n: number, node: string | null, until: number | null = node ? 100 : null): BindSlot => ({ slot: n, node, until });

describe("decideBindHold", () => {
  test("alone: every free slot is taken, lowest first", () => {
    expect(decideBindHold([slot(1, null), slot(0, null), slot(2, null)], "a", 50, 1, 3)).toEqual({ keep: [], take: [0, 1, 2], surplus: [] });
  });

  test("a share is ceil(limit / nodes wanting it); a live slot of another node is never taken", () => {
    expect(decideBindHold([slot(0, "b"), slot(1, null), slot(2, null)], "a", 50, 2, 3)).toEqual({ keep: [], take: [1, 2], surplus: [] });
    expect(decideBindHold([slot(0, "b"), slot(1, "c")], "a", 50, 3, 2)).toEqual({ keep: [], take: [], surplus: [] });
  });

  test("held above the share: the highest slots are given back", () => {
    expect(decideBindHold([slot(0, "a"), slot(1, "a"), slot(2, "a"), slot(3, "a")], "a", 50, 2, 4)).toEqual({ keep: [0, 1], take: [], surplus: [2, 3] });
  });

  test("a slot whose lease ran out is free, whoever held it", () => {
    expect(decideBindHold([slot(0, "b", 49), slot(1, "b", 50)], "a", 50, 1, 2)).toEqual({ keep: [], take: [0], surplus: [] });
  });

  test("slots past a lowered limit are given back and never taken", () => {
    expect(decideBindHold([slot(0, "a"), slot(1, "a"), slot(2, null)], "a", 50, 1, 1)).toEqual({ keep: [0], take: [], surplus: [1] });
  });
});

test("tps is split in proportion to the binds held; 0 stays unlimited", () => {
  expect(tpsShare(90, 1, 3)).toBe(30);
  expect(tpsShare(90, 2, 3)).toBe(60);
  expect(tpsShare(0, 1, 3)).toBe(0);
});
