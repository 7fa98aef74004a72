import { describe, expect, test } from "bun:test";
import smpp from "smpp";
import {
  capacityFor,
  DATA_CODING_GSM,
  DATA_CODING_UCS2,
  decodeGsm,
  decodeUcs2,
  encodeGsm,
  encodeText,
  encodeUcs2,
  fitsGsm,
} from "../../adapters/smpp/gsm.ts";
import { seeded } from "../support/random.ts";

const udh8 = (dc: number) => capacityFor(dc, "udh8");
const udh16 = (dc: number) => capacityFor(dc, "udh16");

describe("GSM 03.38 alphabet", () => {
  test("well-known septet values", () => {
    expect([...encodeGsm("@£$_")]).toEqual([0x00, 0x01, 0x02, 0x11]);
    expect([...encodeGsm("¤¡¿à")]).toEqual([0x24, 0x40, 0x60, 0x7f]);
    expect([...encodeGsm("€")]).toEqual([0x1b, 0x65]);
    expect([...encodeGsm("{}[]~|^\\\f")]).toEqual([0x1b, 0x28, 0x1b, 0x29, 0x1b, 0x3c, 0x1b, 0x3e, 0x1b, 0x3d, 0x1b, 0x40, 0x1b, 0x14, 0x1b, 0x2f, 0x1b, 0x0a]);
  });

  test("agrees with node-smpp's independent GSM table on every character", () => {
    const all =
      "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà\f^{}\\[~]|€";
    const theirs: Buffer = smpp.encodings.ASCII.encode(all);
    expect(Buffer.from(encodeGsm(all)).toString("hex")).toBe(theirs.toString("hex"));
  });

  test("round-trips every basic and extension character", () => {
    const all =
      "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà\f^{}\\[~]|€";
    expect(fitsGsm(all)).toBe(true);
    expect(decodeGsm(encodeGsm(all))).toBe(all);
  });

  test("characters outside the table force UCS2", () => {
    for (const s of ["ç", "`", "Привет", "😀", "’", "ő"]) expect(fitsGsm(s)).toBe(false);
    expect(() => encodeGsm("ç")).toThrow(RangeError);
  });

  test("decodeGsm keeps octets above 0x7F as Latin-1 and tolerates a trailing ESC", () => {
    expect(decodeGsm(Uint8Array.of(0x41, 0xe9, 0x1b))).toBe("Aé");
  });
});

describe("UCS2", () => {
  test("UTF-16BE round trip with surrogate pairs", () => {
    const s = "Привет 😀 世界";
    expect(Buffer.from(encodeUcs2(s)).toString("hex")).toBe(Buffer.from(s, "utf16le").swap16().toString("hex"));
    expect(decodeUcs2(encodeUcs2(s))).toBe(s);
  });
});

describe("segmentation", () => {
  test("capacities", () => {
    expect(capacityFor(DATA_CODING_GSM, "udh8")).toEqual({ single: 160, part: 153 });
    expect(capacityFor(DATA_CODING_GSM, "udh16")).toEqual({ single: 160, part: 152 });
    expect(capacityFor(DATA_CODING_UCS2, "udh8")).toEqual({ single: 70, part: 67 });
    expect(capacityFor(DATA_CODING_UCS2, "udh16")).toEqual({ single: 70, part: 66 });
    expect(capacityFor(DATA_CODING_UCS2, "sar")).toEqual({ single: 70, part: 66 });
  });

  test("160 GSM septets are one part, 161 are two (153 + 8)", () => {
    expect(encodeText("a".repeat(160), udh8).parts.map((p) => p.length)).toEqual([160]);
    expect(encodeText("a".repeat(161), udh8).parts.map((p) => p.length)).toEqual([153, 8]);
    expect(encodeText("a".repeat(306), udh8).parts.length).toBe(2);
    expect(encodeText("a".repeat(306), udh16).parts.length).toBe(3);
  });

  test("extension characters count twice and an escape pair is never split", () => {
    // 80 '€' = 160 septets: still one SMS.
    expect(encodeText("€".repeat(80), udh8).parts.length).toBe(1);
    const t = "a".repeat(152) + "€" + "b".repeat(10);
    const enc = encodeText(t, udh8);
    expect(enc.dataCoding).toBe(DATA_CODING_GSM);
    expect(enc.parts.map((p) => p.length)).toEqual([152, 12]);
    expect(enc.parts[0]![151]).toBe(0x61);
    expect([...enc.parts[1]!.subarray(0, 3)]).toEqual([0x1b, 0x65, 0x62]);
  });

  test("70 UCS2 units are one part, 71 are 67 + 4; a surrogate pair is never split", () => {
    expect(encodeText("я".repeat(70), udh8).parts.length).toBe(1);
    expect(encodeText("я".repeat(71), udh8).parts.map((p) => p.length / 2)).toEqual([67, 4]);
    const t = "я".repeat(66) + "😀" + "я".repeat(10);
    const enc = encodeText(t, udh8);
    expect(enc.dataCoding).toBe(DATA_CODING_UCS2);
    expect(enc.parts.map((p) => p.length / 2)).toEqual([66, 12]);
    expect(decodeUcs2(enc.parts[1]!).startsWith("😀")).toBe(true);
  });

  test("random texts: parts join to the whole, respect the cap, never end mid-pair (seeded)", () => {
    const rnd = seeded(20240611);
    const pools = ["abc xyz", "€[]{}|~^\\", "Ωßé@£", "я世", "😀🎉"];
    for (let i = 0; i < 500; i++) {
      const pool = [...pools.slice(0, 1 + Math.floor(rnd() * pools.length)).join("")];
      const len = Math.floor(rnd() * 500);
      let text = "";
      for (let j = 0; j < len; j++) text += pool[Math.floor(rnd() * pool.length)];
      for (const cap of [udh8, udh16]) {
        const enc = encodeText(text, cap);
        const c = cap(enc.dataCoding);
        expect(Buffer.concat(enc.parts).equals(Buffer.from(enc.whole))).toBe(true);
        if (enc.parts.length === 1) expect(enc.whole.length).toBeLessThanOrEqual(enc.dataCoding === DATA_CODING_GSM ? c.single : c.single * 2);
        for (const p of enc.parts.length > 1 ? enc.parts : []) {
          if (enc.dataCoding === DATA_CODING_GSM) {
            expect(p.length).toBeLessThanOrEqual(c.part);
            // A part ending in ESC would have split a pair (ESC never occurs as a second octet).
            let k = 0;
            while (k < p.length) k += p[k] === 0x1b ? 2 : 1;
            expect(k).toBe(p.length);
          } else {
            expect(p.length / 2).toBeLessThanOrEqual(c.part);
            const last = (p[p.length - 2]! << 8) | p[p.length - 1]!;
            expect(last >= 0xd800 && last <= 0xdbff).toBe(false);
          }
        }
        const decoded = enc.dataCoding === DATA_CODING_GSM ? enc.parts.map(decodeGsm).join("") : enc.parts.map(decodeUcs2).join("");
        expect(decoded).toBe(text);
      }
    }
  });
});
