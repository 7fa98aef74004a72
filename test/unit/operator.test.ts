// How operator commands read their arguments (shared by the admin CLI and the admin HTTP API).
import { describe, expect, test } from "bun:test";
import { OperatorInputError, positiveInt, requeueTarget, retryFilter } from "../../src/admin/operator.ts";

describe("retryFilter", () => {
  test("each field read, or refused by name", () => {
    expect(retryFilter({})).toEqual({});
    expect(retryFilter({ since: "2025-01-31T12:00:00Z", error: "mm7:4007", account: "acme", limit: "5" })).toEqual({
      since: Date.parse("2025-01-31T12:00:00Z"),
      errorCode: "mm7:4007",
      accountId: "acme",
      limit: 5,
    });
    for (const [raw, field] of [
      [{ since: "yesterday" }, "since"],
      [{ since: 1738324800000 }, "since"],
      [{ error: "" }, "error"],
      [{ error: 4007 }, "error"],
      [{ account: "" }, "account"],
      [{ account: 7 }, "account"],
      [{ limit: 0 }, "limit"],
    ] as const) {
      expect(() => retryFilter(raw)).toThrow(OperatorInputError);
      expect(() => retryFilter(raw)).toThrow(new RegExp(`^${field}:`));
    }
  });
});

describe("requeueTarget and positiveInt", () => {
  test('"all", or a non-empty list of positive whole numbers (strings of digits too)', () => {
    expect(requeueTarget("all")).toBe("all");
    expect(requeueTarget([3, "12"])).toEqual([3, 12]);
    for (const bad of [[], "some", [0], [-1], [1.5], ["1x"], ["x1"], ["1 2"], [null]]) expect(() => requeueTarget(bad)).toThrow(OperatorInputError);
  });

  test("positiveInt names the argument", () => {
    expect(positiveInt(1, "n")).toBe(1);
    expect(positiveInt("42", "n")).toBe(42);
    expect(() => positiveInt("4.2", "older_than_hours")).toThrow(/^older_than_hours: expected a positive whole number \(got "4.2"\)$/);
    expect(() => positiveInt(true, "n")).toThrow(OperatorInputError);
  });
});
