import { describe, expect, test } from "bun:test";
import { idReadings, plainKey, receiptKey, respKey } from "../../adapters/smpp/message-id.ts";
import { Tag, type ShortMessageFields, type Tlv } from "../../adapters/smpp/pdu.ts";
import { isReceipt, parseReceipt, parseReceiptDate, parseReceiptText } from "../../adapters/smpp/receipt.ts";

function dlr(text: string, esmClass = 0x04, tlvs: Tlv[] = []): ShortMessageFields {
  return {
    serviceType: "", sourceTon: 1, sourceNpi: 1, sourceAddr: "4477", destTon: 5, destNpi: 0, destAddr: "ACME",
    esmClass, protocolId: 0, priorityFlag: 0, scheduleDeliveryTime: "", validityPeriod: "", registeredDelivery: 0,
    replaceIfPresent: 0, dataCoding: 0, smDefaultMsgId: 0, shortMessage: Buffer.from(text, "latin1"), tlvs,
  };
}
const cstr = (s: string) => Uint8Array.from(Buffer.from(s + "\0", "latin1"));

describe("detection", () => {
  test("esm_class type bits are masked, not compared", () => {
    expect(isReceipt(dlr("", 0x04))).toBe(true);
    expect(isReceipt(dlr("", 0x44))).toBe(true);
    expect(isReceipt(dlr("", 0x20))).toBe(true);
    expect(isReceipt(dlr("", 0x08))).toBe(true);
    expect(isReceipt(dlr("", 0x00))).toBe(false);
    expect(isReceipt(dlr("", 0x40))).toBe(false);
    expect(isReceipt(dlr("", 0x00, [{ tag: Tag.receipted_message_id, value: cstr("1") }]))).toBe(true);
  });
});

describe("text parsing", () => {
  test("the Appendix B format", () => {
    const f = parseReceiptText("id:0123456789 sub:001 dlvrd:001 submit date:2401311200 done date:2401311201 stat:DELIVRD err:000 text:Hello id:9 world");
    expect(Object.fromEntries(f)).toEqual({
      id: "0123456789", sub: "001", dlvrd: "001", submitdate: "2401311200", donedate: "2401311201", stat: "DELIVRD", err: "000", text: "Hello id:9 world",
    });
  });

  test("odd spacing, case, missing fields, joined date keys, empty values", () => {
    const f = parseReceiptText("ID:  abc_12-Z   SUBMITDATE:240131120059 Donedate:240131120100  Stat:  undeliv  Err:12 sub: dlvrd:0");
    expect(f.get("id")).toBe("abc_12-Z");
    expect(f.get("stat")).toBe("undeliv");
    expect(f.get("err")).toBe("12");
    expect(f.get("donedate")).toBe("240131120100");
    expect(f.get("sub")).toBe("");
    expect(f.get("dlvrd")).toBe("0");
    expect(parseReceiptText("msgid:5 stat:DELIVRD").get("id")).toBeUndefined();
  });

  test("keys spaced from their colon, joined date keys, a value's stray second word, a repeated key", () => {
    const f = parseReceiptText("id : 42 extra sub:1 SUBMITDATE:2401311200 done_date:2024-01-31 12:01 stat :DELIVRD id:43 text:x");
    expect(Object.fromEntries(f)).toEqual({ id: "42", sub: "1", submitdate: "2401311200", donedate: "2024-01-31 12:01", stat: "DELIVRD", text: "x" });
    expect(parseReceiptText("9id:5 Xid:6 id:7").get("id")).toBe("7");
  });

  test("each call reads its own text (the pattern's position does not carry over from a call that stopped at text:)", () => {
    expect(parseReceiptText("id:1 stat:DELIVRD text:a long message body here").get("id")).toBe("1");
    expect(parseReceiptText("id:2 stat:UNDELIV").get("id")).toBe("2");
  });

  test("every field of a date at its bounds", () => {
    const ok: [string, number][] = [
      ["2412311201", Date.UTC(2024, 11, 31, 12, 1)],
      ["2401011201", Date.UTC(2024, 0, 1, 12, 1)],
      ["2401312359", Date.UTC(2024, 0, 31, 23, 59)],
      ["240131000000", Date.UTC(2024, 0, 31, 0, 0, 0)],
      ["2401 3112 01", Date.UTC(2024, 0, 31, 12, 1)],
    ];
    for (const [v, t] of ok) expect([v, parseReceiptDate(v)]).toEqual([v, t]);
    for (const v of ["2400311200", "2401001200", "2401321200", "2401312400", "2401311260", "240131120060", "24013112011", "12401311201", "240131120", ""]) {
      expect([v, parseReceiptDate(v)]).toEqual([v, undefined]);
    }
  });

  test("dates of 10 or 12 digits, UTC; nonsense gives undefined", () => {
    expect(parseReceiptDate("2401311201")).toBe(Date.UTC(2024, 0, 31, 12, 1));
    expect(parseReceiptDate("240131120159")).toBe(Date.UTC(2024, 0, 31, 12, 1, 59));
    expect(parseReceiptDate("2413311201")).toBeUndefined();
    expect(parseReceiptDate("abc")).toBeUndefined();
    expect(parseReceiptDate(undefined)).toBeUndefined();
  });
});

describe("parseReceipt", () => {
  test("TLVs win over the text, field by field", () => {
    const r = parseReceipt(
      dlr("id:999 stat:UNDELIV err:001 done date:2401311201", 0x04, [
        { tag: Tag.receipted_message_id, value: cstr("ABC") },
        { tag: Tag.message_state, value: Uint8Array.of(2) },
        { tag: Tag.network_error_code, value: Uint8Array.of(3, 0, 1) },
      ]),
    );
    expect(r).toEqual({ id: "ABC", stat: "DELIVRD", outcome: "delivered", err: "001", networkError: "3:1", doneAt: Date.UTC(2024, 0, 31, 12, 1) });
  });

  test("text only; ids with '_' survive (Latin-1, not GSM, decoding)", () => {
    const r = parseReceipt(dlr("id:msg_0001 sub:001 dlvrd:000 submit date:2401311200 done date:2401311201 stat:EXPIRED err:000 text:"));
    expect(r.id).toBe("msg_0001");
    expect(r.outcome).toBe("failed");
    expect(r.stat).toBe("EXPIRED");
  });

  test("stat words and message_state numbers map to outcomes", () => {
    const words: [string, string][] = [
      ["DELIVRD", "delivered"], ["UNDELIV", "failed"], ["EXPIRED", "failed"], ["REJECTD", "failed"], ["DELETED", "failed"],
      ["UNKNOWN", "unknown"], ["ENROUTE", "pending"], ["ACCEPTD", "pending"], ["delivrd", "delivered"], ["WEIRD", "failed"],
    ];
    for (const [w, o] of words) expect(parseReceipt(dlr(`id:1 stat:${w}`)).outcome).toBe(o as never);
    const states: [number, string][] = [[0, "pending"], [1, "pending"], [2, "delivered"], [3, "failed"], [4, "failed"], [5, "failed"], [6, "pending"], [7, "unknown"], [8, "failed"], [9, "failed"]];
    for (const [n, o] of states) expect(parseReceipt(dlr("", 4, [{ tag: Tag.receipted_message_id, value: cstr("1") }, { tag: Tag.message_state, value: Uint8Array.of(n) }])).outcome).toBe(o as never);
    expect(parseReceipt(dlr("id:1")).outcome).toBe("unknown");
  });

  test("every message_state's stat word, and the TLV's over the text's", () => {
    const names = ["SCHEDULED", "ENROUTE", "DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "SKIPPED"];
    for (const [n, stat] of names.entries()) {
      const r = parseReceipt(dlr("id:1 stat:DELIVRD", 4, [{ tag: Tag.message_state, value: Uint8Array.of(n) }]));
      expect([n, r.stat]).toEqual([n, stat]);
    }
    expect(parseReceipt(dlr("id:1 stat:DELIVRD", 4, [{ tag: Tag.message_state, value: Uint8Array.of(7) }])).outcome).toBe("unknown");
    // A state number outside the table: the text decides.
    expect(parseReceipt(dlr("id:1 stat:DELIVRD", 4, [{ tag: Tag.message_state, value: Uint8Array.of(42) }]))).toMatchObject({ stat: "DELIVRD", outcome: "delivered" });
  });

  test("Kannel's other spellings of the stat words", () => {
    const words: [string, string][] = [
      ["DELIVERED", "delivered"], ["ACCEPTED", "pending"], ["ACKED", "pending"], ["BUFFRED", "pending"], ["BUFFERD", "pending"], ["SCHEDULED", "pending"],
      ["UNDELIVERABLE", "failed"], ["REJECTED", "failed"], ["SKIPPED", "failed"],
    ];
    for (const [w, o] of words) expect([w, parseReceipt(dlr(`id:1 stat:${w}`)).outcome]).toEqual([w, o]);
    expect(parseReceipt(dlr("id:1 stat: err:0"))).toMatchObject({ stat: undefined, outcome: "unknown" });
  });

  test("receipted_message_id: NUL-terminated or not, trimmed; an empty one gives way to the text's id", () => {
    const id = (value: Uint8Array, text = "") => parseReceipt(dlr(text, 4, [{ tag: Tag.receipted_message_id, value }])).id;
    expect(id(cstr("ABC"))).toBe("ABC");
    expect(id(Uint8Array.from(Buffer.from("ABC", "latin1")))).toBe("ABC");
    expect(id(cstr(" ABC "))).toBe("ABC");
    expect(id(cstr(""), "id:77 stat:DELIVRD")).toBe("77");
    expect(id(Uint8Array.of(), "id:78")).toBe("78");
  });

  test("network_error_code: type and a two-byte code; a short one is ignored", () => {
    const nec = (value: Uint8Array) => parseReceipt(dlr("id:1 stat:UNDELIV", 4, [{ tag: Tag.network_error_code, value }])).networkError;
    expect(nec(Uint8Array.of(3, 1, 2))).toBe("3:258");
    expect(nec(Uint8Array.of(1, 0, 0))).toBe("1:0");
    expect(nec(Uint8Array.of(3, 1))).toBeUndefined();
  });

  test("no id anywhere", () => {
    expect(parseReceipt(dlr("stat:DELIVRD")).id).toBeUndefined();
  });
});

describe("message id keys", () => {
  test("same base: case and leading zeros do not matter", () => {
    expect(respKey("000123abc", "same")).toBe("123ABC");
    expect(receiptKey("123ABC", "same")).toBe("123ABC");
    expect(respKey("0000", "same")).toBe("0");
    expect(plainKey(" 0a-b_c ")).toBe("A-B_C");
  });

  test("resp hex / receipt decimal, and the reverse, meet; 64-bit ids keep every digit", () => {
    expect(respKey("04000000086ECD50", "resp_hex_receipt_dec")).toBe("4000000086ECD50");
    expect(receiptKey(BigInt("0x04000000086ECD50").toString(10), "resp_hex_receipt_dec")).toBe("4000000086ECD50");
    expect(respKey("0288230376292486480", "resp_dec_receipt_hex")).toBe("288230376292486480");
    expect(receiptKey("0400000008ecd50", "resp_dec_receipt_hex")).toBe(BigInt("0x400000008ecd50").toString(10));
    // Non-numeric ids pass through in their plain form under any policy.
    for (const base of ["same", "resp_hex_receipt_dec", "resp_dec_receipt_hex", "auto"] as const) {
      expect(respKey("ab-12", base)).toBe(receiptKey("AB-12", base));
    }
  });

  test("auto: hex letters mean hex, digits mean decimal", () => {
    expect(respKey("1A", "auto")).toBe("26");
    expect(receiptKey("026", "auto")).toBe("26");
  });

  test("idReadings: every key a receipt's id may stand for, plain first, each with its base", () => {
    expect(idReadings("0026")).toEqual([
      { key: "26", base: "same" },
      { key: "1A", base: "resp_hex_receipt_dec" },
      { key: "38", base: "resp_dec_receipt_hex" },
    ]);
    expect(idReadings("1a")).toEqual([
      { key: "1A", base: "same" },
      { key: "26", base: "resp_dec_receipt_hex" },
    ]);
    expect(idReadings("x-1")).toEqual([{ key: "X-1", base: "same" }]);
    // 0-9 read alike in both bases: one key.
    expect(idReadings("007")).toEqual([{ key: "7", base: "same" }]);
    // 64-bit ids do not lose digits.
    expect(idReadings("18446744073709551615").map((r) => r.key)).toContain("FFFFFFFFFFFFFFFF");
    // A 64 KiB run of digits (message_payload) is not converted.
    expect(idReadings("9".repeat(65_536))).toHaveLength(1);
    // The plain reading is the key the submit answer gets under "learn": a same-base carrier still meets.
    for (const id of ["0F4240", "1000000", "ab-12"]) expect(idReadings(id)[0]!.key).toBe(respKey(id, "learn"));
  });
});
