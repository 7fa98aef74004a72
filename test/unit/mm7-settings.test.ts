// Settings: defaults, presets, and refusal of what the adapter would not understand.
import { describe, expect, test } from "bun:test";
import { addressKind } from "../../adapters/mm7/envelope.ts";
import { mm7Defaults, mm7Presets, namespaceUri, resolveMm7Settings } from "../../adapters/mm7/settings.ts";

describe("resolveMm7Settings", () => {
  test("defaults match config.md where keys overlap", () => {
    const s = resolveMm7Settings({});
    expect(s).toMatchObject({ namespace: "REL-6-MM7-1-4", version: "6.8.0", max_message_bytes: 307200, xml_style: "default-namespace" });
    expect(namespaceUri(s)).toBe("http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4");
  });

  test("presets keep namespace and version independent", () => {
    expect(Object.values(mm7Presets)).toEqual([
      { namespace: "REL-6-MM7-1-4", version: "6.8.0" },
      { namespace: "REL-5-MM7-1-3", version: "5.3.0" },
      { namespace: "REL-5-MM7-1-0", version: "5.3.0" },
    ]);
    expect(resolveMm7Settings({ namespace: "REL-5-MM7-1-2", version: "5.5.0" })).toMatchObject({ namespace: "REL-5-MM7-1-2", version: "5.5.0" });
  });

  test.each([
    [{ nope: 1 }, /unknown setting "nope"/],
    [{ timeout_ms: "30" }, /timeout_ms/],
    [{ rate: -1 }, /rate/],
    [{ xml_style: "mm7" }, /xml_style/],
    [{ submit_elements: ["Subject", "Bogus"] }, /Bogus/],
    [{ fallback_status_codes: ["2002"] }, /fallback_status_codes/],
    [{ version: "6.8" }, /x\.y\.z/],
    [{ namespace: "http://x" }, /namespace/],
    [{ concurrency: 0 }, /concurrency/],
  ])("refuses %j", (input, message) => {
    expect(() => resolveMm7Settings(input as Record<string, unknown>)).toThrow(message);
  });

  test("the defaults object itself resolves unchanged", () => {
    expect(resolveMm7Settings({ ...mm7Defaults })).toEqual(mm7Defaults);
  });
});

describe("sender address type", () => {
  test.each([
    ["12345", "auto", "ShortCode"],
    ["+123456", "auto", "ShortCode"],
    ["18885551234", "auto", "Number"],
    ["news@example.com", "auto", "RFC2822Address"],
    ["12345", "number", "Number"],
    ["18885551234", "shortcode", "ShortCode"],
  ] as const)("%s with %s → %s", (addr, type, kind) => {
    expect(addressKind(addr, type)).toBe(kind);
  });
});
