// adapters/smpp/mo.ts: MO decoding and the reassembly of concatenated MO.
import { describe, expect, test } from "bun:test";
import { decodeText, MoReassembly, splitUserData } from "../../adapters/smpp/mo.ts";
import { Tag, u16Tlv, u8Tlv, type ShortMessageFields } from "../../adapters/smpp/pdu.ts";

function mo(shortMessage: Uint8Array, esmClass = 0, tlvs: ShortMessageFields["tlvs"] = [], dataCoding = 0): ShortMessageFields {
  return {
    serviceType: "", sourceTon: 1, sourceNpi: 1, sourceAddr: "4477", destTon: 1, destNpi: 1, destAddr: "12345",
    esmClass, protocolId: 0, priorityFlag: 0, scheduleDeliveryTime: "", validityPeriod: "", registeredDelivery: 0,
    replaceIfPresent: 0, dataCoding, smDefaultMsgId: 0, shortMessage, tlvs,
  };
}

describe("MO", () => {
  test("UDH 8/16-bit and SAR give the concatenation info; a broken UDH is ignored", () => {
    expect(splitUserData(mo(Uint8Array.of(5, 0, 3, 9, 2, 1, 0x41), 0x40))).toEqual({ concat: { ref: 9, total: 2, seq: 1 }, payload: Uint8Array.of(0x41) });
    expect(splitUserData(mo(Uint8Array.of(6, 8, 4, 1, 2, 3, 3, 0x41), 0x40)).concat).toEqual({ ref: 0x102, total: 3, seq: 3 });
    expect(splitUserData(mo(Uint8Array.of(0x41), 0, [u16Tlv(Tag.sar_msg_ref_num, 5), u8Tlv(Tag.sar_total_segments, 2), u8Tlv(Tag.sar_segment_seqnum, 2)])).concat).toEqual({ ref: 5, total: 2, seq: 2 });
    expect(splitUserData(mo(Uint8Array.of(9, 0, 3), 0x40)).concat).toBeUndefined();
  });

  test("text by data_coding", () => {
    expect(decodeText(0x00, Uint8Array.of(0x00, 0x1b, 0x65))).toBe("@€");
    expect(decodeText(0x03, Buffer.from("Ação", "latin1"))).toBe("Ação");
    expect(decodeText(0x08, Buffer.from("Привет", "utf16le").swap16())).toBe("Привет");
    expect(decodeText(0xf0, Uint8Array.of(0x00))).toBe("@");
    expect(decodeText(0x18, Buffer.from("я", "utf16le").swap16())).toBe("я");
  });

  test("reassembly: out of order, duplicates, timeout, size bound", () => {
    let t = 0;
    const r = new MoReassembly({ timeoutMs: 1000, maxMessages: 2, maxBytes: 1 << 20 }, () => t);
    const part = (ref: number, seq: number, total: number, text: string) => ({ concat: { ref, total, seq }, payload: Buffer.from(text) });
    const evicted: string[] = [];
    expect(r.add("a", "b", 0, part(1, 2, 2, "World"), (x) => evicted.push(x.text))).toBeUndefined();
    expect(r.add("a", "b", 0, part(1, 2, 2, "World"), (x) => evicted.push(x.text))).toBeUndefined();
    const done = r.add("a", "b", 0, part(1, 1, 2, "Hello "), (x) => evicted.push(x.text));
    expect(done).toMatchObject({ text: "Hello World", complete: true });
    r.release(done!.key);
    r.add("a", "b", 0, part(2, 1, 3, "x"), () => {});
    t = 500;
    r.add("c", "b", 0, part(3, 1, 2, "y"), () => {});
    r.add("d", "b", 0, part(4, 1, 2, "z"), (x) => evicted.push(x.text));
    expect(evicted).toEqual(["x"]);
    t = 1600;
    expect(r.expire().map((x) => [x.text, x.complete])).toEqual([["y", false], ["z", false]]);
    expect(r.size).toBe(0);
  });

  test("reassembly is bounded in octets: oldest out first, a message alone over the bound goes by itself", () => {
    const r = new MoReassembly({ timeoutMs: 60_000, maxMessages: 100, maxBytes: 10 }, () => 0);
    const part = (ref: number, seq: number, total: number, text: string) => ({ concat: { ref, total, seq }, payload: Buffer.from(text) });
    const evicted: string[] = [];
    const out = (x: { text: string }) => evicted.push(x.text);
    r.add("a", "b", 0, part(1, 1, 3, "aaaa"), out);
    r.add("a", "b", 0, part(2, 1, 3, "bbbb"), out);
    expect([r.bytes, evicted]).toEqual([8, []]);
    r.add("a", "b", 0, part(3, 1, 3, "cccc"), out);
    expect([r.size, r.bytes, evicted]).toEqual([2, 8, ["aaaa"]]);
    // A duplicate part holds nothing more.
    r.add("a", "b", 0, part(3, 1, 3, "cccc"), out);
    expect(r.bytes).toBe(8);
    // One message over the bound by itself goes alone: the older ones could not make room for it.
    r.add("a", "b", 0, part(4, 1, 2, "dddddddddddd"), out);
    expect([r.size, r.bytes, evicted]).toEqual([2, 8, ["aaaa", "dddddddddddd"]]);
    r.add("a", "b", 0, part(6, 1, 2, "gggggg"), out);
    expect([r.size, r.bytes, evicted]).toEqual([2, 10, ["aaaa", "dddddddddddd", "bbbb"]]);
    // A completing part is returned, not evicted, and release frees its octets.
    r.add("a", "b", 0, part(5, 1, 2, "eeee"), out);
    const done = r.add("a", "b", 0, part(5, 2, 2, "ff"), out);
    expect(done).toMatchObject({ text: "eeeeff", complete: true });
    expect(evicted.at(-1)).toBe("cccc");
    r.release(done!.key);
    expect([r.size, r.bytes]).toEqual([1, 6]);
  });

  test("a completed message with the pipeline is neither pushed out nor expired (it would arrive twice)", () => {
    let t = 0;
    const r = new MoReassembly({ timeoutMs: 1000, maxMessages: 100, maxBytes: 10 }, () => t);
    const part = (ref: number, seq: number, total: number, text: string) => ({ concat: { ref, total, seq }, payload: Buffer.from(text) });
    const evicted: string[] = [];
    const out = (x: { text: string }) => evicted.push(x.text);
    r.add("a", "b", 0, part(1, 1, 2, "aaaa"), out);
    const done = r.add("a", "b", 0, part(1, 2, 2, "bbbb"), out)!;
    r.add("a", "b", 0, part(2, 1, 2, "cccc"), out);
    // Over the bound: the idle newer message goes, the one being stored stays.
    expect(evicted).toEqual(["cccc"]);
    t = 2000;
    expect(r.expire()).toEqual([]);
    // Refused by the pipeline: it waits for the redelivery again, and may expire.
    r.refused(done.key);
    expect(r.expire().map((x) => [x.text, x.complete])).toEqual([["aaaabbbb", true]]);
  });
});
