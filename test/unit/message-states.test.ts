import { describe, expect, test } from "bun:test";
import { IllegalTransition, assertTransition, isFinal, type MessageState } from "../../src/domain/message.ts";

const all: MessageState[] = ["accepted", "submitting", "submitted", "delivered", "failed", "sent"];
const legal = new Set([
  "accepted>submitting",
  "accepted>failed",
  "submitting>submitted",
  "submitting>accepted",
  "submitting>failed",
  "submitted>delivered",
  "submitted>failed",
  "submitted>sent",
  "submitted>accepted",
]);

describe("message states", () => {
  for (const from of all) {
    for (const to of all) {
      const ok = legal.has(`${from}>${to}`);
      test(`${from} → ${to} is ${ok ? "legal" : "illegal"}`, () => {
        if (ok) expect(() => assertTransition(from, to, "m")).not.toThrow();
        else expect(() => assertTransition(from, to, "m")).toThrow(IllegalTransition);
      });
    }
  }
  test("final states", () => {
    expect(all.filter(isFinal)).toEqual(["delivered", "failed", "sent"]);
  });
});
