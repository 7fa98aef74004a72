// adapters/smpp/submit.ts: submit planning (addresses, parts, concatenation), and the settings it reads.
import { describe, expect, test } from "bun:test";
import { Tag } from "../../adapters/smpp/pdu.ts";
import { resolveSettings, smppDefaults } from "../../adapters/smpp/settings.ts";
import { destinationAddress, planSubmit, sourceAddress } from "../../adapters/smpp/submit.ts";

const s = resolveSettings({});
const msg = (text: string, from = "ACME", to = "+447700900123") => ({ messageId: "m1", from, to, text });

describe("addresses", () => {
  test("TON/NPI by the sender's shape", () => {
    expect(sourceAddress("ACME", s)).toEqual({ ton: 5, npi: 0, addr: "ACME" });
    expect(sourceAddress("+447700900123", s)).toEqual({ ton: 1, npi: 1, addr: "447700900123" });
    expect(sourceAddress("12345678", s)).toEqual({ ton: 3, npi: 0, addr: "12345678" });
    expect(sourceAddress("123456789", s)).toEqual({ ton: 1, npi: 1, addr: "123456789" });
    expect(sourceAddress("Twelve chars", s)).toBeUndefined();
    expect(sourceAddress("Café", s)).toBeUndefined();
    expect(destinationAddress("+447700900123", s)).toEqual({ ton: 1, npi: 1, addr: "447700900123" });
    expect(destinationAddress("07700 900123", s)).toBeUndefined();
  });
});

describe("planSubmit", () => {
  test("single part: explicit data_coding, receipt requested, no UDH", () => {
    const p = planSubmit(msg("Hi @ you"), s, 7);
    if (p.kind !== "parts") throw new Error("refused");
    expect(p.parts.length).toBe(1);
    expect(p.parts[0]).toMatchObject({ dataCoding: 0, esmClass: 0, registeredDelivery: 1, sourceTon: 5, destAddr: "447700900123" });
    expect([...p.parts[0]!.shortMessage]).toEqual([0x48, 0x69, 0x20, 0x00, 0x20, 0x79, 0x6f, 0x75]);
  });

  test("UDH8 and UDH16 headers, same reference across parts", () => {
    const p8 = planSubmit(msg("x".repeat(200)), s, 0x1234);
    const p16 = planSubmit(msg("x".repeat(200)), { ...s, concatenation: "udh16" }, 0x1234);
    if (p8.kind !== "parts" || p16.kind !== "parts") throw new Error("refused");
    expect(p8.parts.map((x) => [...x.shortMessage.subarray(0, 6)])).toEqual([[5, 0, 3, 0x34, 2, 1], [5, 0, 3, 0x34, 2, 2]]);
    expect(p8.parts.every((x) => x.esmClass === 0x40)).toBe(true);
    expect(p16.parts.map((x) => [...x.shortMessage.subarray(0, 7)])).toEqual([[6, 8, 4, 0x12, 0x34, 2, 1], [6, 8, 4, 0x12, 0x34, 2, 2]]);
  });

  test("SAR puts the reference in TLVs; payload sends one PDU", () => {
    const sar = planSubmit(msg("x".repeat(200)), { ...s, concatenation: "sar" }, 0x1234);
    if (sar.kind !== "parts") throw new Error("refused");
    expect(sar.parts[1]!.tlvs.map((t) => [t.tag, [...t.value]])).toEqual([[Tag.sar_msg_ref_num, [0x12, 0x34]], [Tag.sar_total_segments, [2]], [Tag.sar_segment_seqnum, [2]]]);
    expect(sar.parts[0]!.esmClass).toBe(0);
    const pay = planSubmit(msg("x".repeat(200)), { ...s, concatenation: "payload" }, 1);
    if (pay.kind !== "parts") throw new Error("refused");
    expect(pay.parts.length).toBe(1);
    expect(pay.parts[0]!.shortMessage.length).toBe(0);
    expect(pay.parts[0]!.tlvs[0]!.value.length).toBe(200);
  });

  test("over max_parts, bad sender or recipient: refused before sending", () => {
    expect(planSubmit(msg("x".repeat(153 * 6 + 1)), s, 1)).toMatchObject({ kind: "refused", code: "smpp:too-long" });
    expect(planSubmit(msg("x".repeat(153 * 6)), s, 1).kind).toBe("parts");
    expect(planSubmit(msg("hi", "Much too long sender"), s, 1)).toMatchObject({ kind: "refused", code: "smpp:bad-source" });
    expect(planSubmit(msg("hi", "ACME", "abc"), s, 1)).toMatchObject({ kind: "refused", code: "smpp:bad-destination" });
  });

  test("settings are range-checked", () => {
    expect(() => resolveSettings({ window: 0 })).toThrow("window");
    expect(() => resolveSettings({ password: "123456789" })).toThrow("password");
    expect(resolveSettings({}).temporary_status_codes).toEqual(smppDefaults.temporary_status_codes);
  });
});
