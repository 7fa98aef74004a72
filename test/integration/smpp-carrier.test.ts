// What travels over the bind, end to end with the node-smpp simulator: long texts and their parts
// byte for byte, receipts in every variant SMSCs send, and MO single and concatenated.
import { describe, expect, test } from "bun:test";
import { linesCarrying, secretForms } from "../support/secrets.ts";
import { everyLogLine, smppTestBed, sms } from "../peers/smpp-harness.ts";
import type { SmscOptions, SubmitRecord } from "../peers/smpp-sim.ts";

const { setup } = smppTestBed();

/** UTF-16BE to string without our decoder. */
const ucs2 = (b: Buffer) => Buffer.from(b).swap16().toString("utf16le");

/** Checks the UDH of every part and returns the bodies in order. */
function udhParts(subs: SubmitRecord[], kind: "udh8" | "udh16"): Buffer[] {
  const total = subs.length;
  const ref = kind === "udh8" ? subs[0]!.udh[3] : subs[0]!.udh.readUInt16BE(3);
  subs.forEach((s, i) => {
    expect(s.esmClass & 0x40).toBe(0x40);
    if (kind === "udh8") expect([...s.udh]).toEqual([5, 0, 3, ref!, total, i + 1]);
    else expect([...s.udh]).toEqual([6, 8, 4, ref! >> 8, ref! & 0xff, total, i + 1]);
  });
  return subs.map((s) => s.body);
}

describe("long messages at the SMSC", () => {
  const gsmText = "Price {5€} [list] ~tilde~ |pipe| back\\slash ^caret^ @£$¥ ".repeat(8);

  test("GSM with extension characters: byte-exact parts, no split escape, node-smpp decodes the original", async () => {
    const { smsc, h } = await setup();
    const r = await h.carrier.submit(sms(gsmText));
    expect(r.kind).toBe("ok");
    if (r.kind === "ok") expect(r.carrierMessageIds.length).toBe(smsc.submits.length);
    const bodies = udhParts(smsc.submits, "udh8");
    expect(smsc.submits.every((s) => s.dataCoding === 0)).toBe(true);
    for (const b of bodies) {
      expect(b.length).toBeLessThanOrEqual(153);
      let k = 0;
      while (k < b.length) k += b[k] === 0x1b ? 2 : 1;
      expect(k).toBe(b.length); // ends on a whole character
    }
    // node-smpp's own GSM table (independent of ours) turns the joined septets back into the text.
    const smpp = (await import("smpp")).default;
    expect(smpp.encodings.ASCII.decode(Buffer.concat(bodies))).toBe(gsmText);
  });

  test("UCS2 with emoji: parts of at most 67 units, no split surrogate, reassemble to the original", async () => {
    const text = "Привет, мир! 😀🎉 世界 ".repeat(12);
    const { smsc, h } = await setup();
    expect((await h.carrier.submit(sms(text))).kind).toBe("ok");
    const bodies = udhParts(smsc.submits, "udh8");
    expect(smsc.submits.every((s) => s.dataCoding === 8)).toBe(true);
    for (const b of bodies) {
      expect(b.length / 2).toBeLessThanOrEqual(67);
      const last = b.readUInt16BE(b.length - 2);
      expect(last >= 0xd800 && last <= 0xdbff).toBe(false);
    }
    expect(ucs2(Buffer.concat(bodies))).toBe(text);
  });

  test("16-bit UDH", async () => {
    const { smsc, h } = await setup({}, { concatenation: "udh16" });
    expect((await h.carrier.submit(sms("z".repeat(305)))).kind).toBe("ok");
    const bodies = udhParts(smsc.submits, "udh16");
    expect(bodies.map((b) => b.length)).toEqual([152, 152, 1]);
  });

  test("SAR TLVs", async () => {
    const text = "Ж".repeat(150);
    const { smsc, h } = await setup({}, { concatenation: "sar" });
    expect((await h.carrier.submit(sms(text))).kind).toBe("ok");
    const ref = smsc.submits[0]!.sar!.ref;
    expect(smsc.submits.map((s) => s.sar)).toEqual([1, 2, 3].map((seq) => ({ ref, total: 3, seq })));
    expect(smsc.submits.every((s) => s.esmClass === 0 && s.udh.length === 0)).toBe(true);
    expect(ucs2(Buffer.concat(smsc.submits.map((s) => s.body)))).toBe(text);
  });

  test("message_payload", async () => {
    const text = "payload ".repeat(40);
    const { smsc, h } = await setup({}, { concatenation: "payload" });
    const r = await h.carrier.submit(sms(text));
    expect(r.kind === "ok" && r.carrierMessageIds.length).toBe(1);
    expect(smsc.submits.length).toBe(1);
    expect(smsc.submits[0]!.raw.length).toBe(0);
    expect(smsc.submits[0]!.messagePayload!.toString("latin1")).toBe(text);
  });

  test("more than max_parts: permanent smpp:too-long, nothing sent", async () => {
    const { smsc, h } = await setup({}, { max_parts: 2 });
    expect(await h.carrier.submit(sms("x".repeat(400)))).toMatchObject({ kind: "permanent", code: "smpp:too-long", fallbackEligible: false });
    expect(smsc.submitCount).toBe(0);
  });
});

describe("receipts", () => {
  async function roundTrip(sim: SmscOptions, settings: Parameters<typeof setup>[1] = {}) {
    const { smsc, h } = await setup({ sendReceipts: true, ...sim }, settings);
    const r = await h.carrier.submit(sms("hello"));
    if (r.kind !== "ok") throw new Error(`submit ${r.kind}`);
    await smsc.waitFor(() => h.receipts.length === 1);
    return { submitId: r.carrierMessageIds[0]!, receipt: h.receipts[0]!, smsc, h };
  }

  test("TLV only (empty text)", async () => {
    const { submitId, receipt } = await roundTrip({ receiptFormat: "tlv" });
    expect(receipt).toMatchObject({ carrier: "sms", carrierMessageId: submitId, outcome: "delivered" });
  });

  test("text only", async () => {
    const { submitId, receipt } = await roundTrip({ receiptFormat: "text", receiptStat: "UNDELIV" });
    expect(receipt).toMatchObject({ carrierMessageId: submitId, outcome: "failed", code: "smpp:UNDELIV:000" });
  });

  test("text with odd spacing and case, 12-digit joined dates", async () => {
    const { submitId, receipt } = await roundTrip({ receiptFormat: "odd-text", receiptStat: "DELIVRD" });
    expect(receipt).toMatchObject({ carrierMessageId: submitId, outcome: "delivered" });
  });

  test("pending and unknown states", async () => {
    const a = await roundTrip({ receiptFormat: "tlv+text", receiptStat: "ENROUTE" });
    expect(a.receipt.outcome).toBe("pending");
    await a.h.carrier.stop(100);
    await a.smsc.stop();
    const b = await roundTrip({ receiptFormat: "text", receiptStat: "UNKNOWN" });
    expect(b.receipt.outcome).toBe("unknown");
  });

  test("receipt before the submit_sm_resp reaches events.receipt and is acknowledged", async () => {
    const { smsc, h } = await setup({ sendReceipts: true, receiptBeforeResp: true, respondDelayMs: 50 });
    const r = await h.carrier.submit(sms("race"));
    h.timeline.push("submit-resolved");
    expect(r.kind).toBe("ok");
    await smsc.waitFor(() => h.receipts.length === 1);
    expect(h.timeline).toEqual([`receipt:${(r as { carrierMessageIds: string[] }).carrierMessageIds[0]}`, "submit-resolved"]);
  });

  test("resp hex / receipt decimal meet under receipt_id_base resp_hex_receipt_dec", async () => {
    const { submitId, receipt, smsc } = await roundTrip({ idBase: "resp_hex_receipt_dec" }, { receipt_id_base: "resp_hex_receipt_dec" });
    expect(smsc.submits[0]!.respId).toBe("F4240");
    expect(smsc.submits[0]!.receiptId).toBe("1000000");
    expect(receipt.carrierMessageId).toBe(submitId);
  });

  test("resp decimal / receipt lower-case hex meet under resp_dec_receipt_hex", async () => {
    const { submitId, receipt, smsc } = await roundTrip({ idBase: "resp_dec_receipt_hex", receiptFormat: "text" }, { receipt_id_base: "resp_dec_receipt_hex" });
    expect(smsc.submits[0]!.receiptId).toBe("f4240");
    expect(receipt.carrierMessageId).toBe(submitId);
  });

  test("leading zeros on either side", async () => {
    const { submitId, receipt } = await roundTrip({ idBase: "hex", respIdPad: 10, receiptIdPad: 14 });
    expect(submitId).toBe("F4240");
    expect(receipt.carrierMessageId).toBe(submitId);
  });

  test("pipeline refuses the receipt: deliver_sm_resp 0x64, the redelivery is acknowledged", async () => {
    const { smsc, h } = await setup();
    h.failNext.receipt = 1;
    expect(await smsc.sendReceipt({ id: "42", format: "text" })).toBe(0x64);
    expect(await smsc.sendReceipt({ id: "42", format: "text" })).toBe(0);
    expect(h.receipts.map((r) => r.carrierMessageId)).toEqual(["42"]);
  });

  test("a receipt without any id is acknowledged and dropped with a warning", async () => {
    const { smsc, h } = await setup();
    expect(await smsc.sendReceipt({ id: "", format: "text", text: "stat:DELIVRD err:000" })).toBe(0);
    expect(h.receipts.length).toBe(0);
    expect(h.logs.some((l) => l.level === "warn" && l.msg?.includes("without a message id"))).toBe(true);
  });

  test("receipts for every part of a multipart message", async () => {
    const { smsc, h } = await setup({ sendReceipts: true });
    const r = await h.carrier.submit(sms("m".repeat(400)));
    if (r.kind !== "ok") throw new Error("not ok");
    await smsc.waitFor(() => h.receipts.length === 3);
    expect(h.receipts.map((x) => x.carrierMessageId).sort()).toEqual([...r.carrierMessageIds].sort());
  });
});

describe("MO", () => {
  test("single GSM and UCS2 MO, acknowledged after inbound resolves", async () => {
    const { smsc, h } = await setup();
    expect(await smsc.sendMo({ from: "447700900123", to: "12345", dataCoding: 0, shortMessage: Buffer.from([0x48, 0x69, 0x20, 0x00, 0x1b, 0x65]) })).toBe(0);
    expect(await smsc.sendMo({ from: "447700900123", to: "12345", dataCoding: 8, shortMessage: Buffer.from("Привет 😀", "utf16le").swap16() })).toBe(0);
    expect(h.inbound.map((m) => [m.channel, m.from, m.to, m.text])).toEqual([
      ["sms", "447700900123", "12345", "Hi @€"],
      ["sms", "447700900123", "12345", "Привет 😀"],
    ]);
    expect(h.inbound[0]!.carrierMessageId).not.toBe(h.inbound[1]!.carrierMessageId);
  });

  test("concatenated MO with 8-bit UDH, parts out of order", async () => {
    const { smsc, h } = await setup();
    const full = Buffer.from("Привет из длинного сообщения 😀".repeat(5), "utf16le").swap16();
    // Cut at an odd unit boundary on purpose: a careless sender splitting a surrogate pair.
    const cut = [0, 133, 266, full.length];
    const parts = [0, 1, 2].map((i) => Buffer.concat([Buffer.from([5, 0, 3, 0x77, 3, i + 1]), full.subarray(cut[i]! & ~1, cut[i + 1]! & ~1)]));
    const statuses = [];
    for (const i of [2, 0, 1]) statuses.push(await smsc.sendMo({ from: "4477", to: "123", dataCoding: 8, esmClass: 0x40, shortMessage: parts[i]! }));
    expect(statuses).toEqual([0, 0, 0]);
    expect(h.inbound.length).toBe(1);
    expect(h.inbound[0]!.text).toBe("Привет из длинного сообщения 😀".repeat(5));
  });

  test("concatenated MO with 16-bit UDH and with SAR", async () => {
    const { smsc, h } = await setup();
    await smsc.sendMo({ from: "4477", to: "123", dataCoding: 0, esmClass: 0x40, shortMessage: Buffer.concat([Buffer.from([6, 8, 4, 1, 2, 2, 1]), Buffer.from("Hello ")]) });
    await smsc.sendMo({ from: "4477", to: "123", dataCoding: 0, esmClass: 0x40, shortMessage: Buffer.concat([Buffer.from([6, 8, 4, 1, 2, 2, 2]), Buffer.from("world")]) });
    await smsc.sendMo({ from: "4478", to: "123", dataCoding: 0, shortMessage: Buffer.from("SAR "), sar: { ref: 300, total: 2, seq: 1 } });
    await smsc.sendMo({ from: "4478", to: "123", dataCoding: 0, shortMessage: Buffer.from("works"), sar: { ref: 300, total: 2, seq: 2 } });
    expect(h.inbound.map((m) => m.text)).toEqual(["Hello world", "SAR works"]);
  });

  test("pipeline refuses the completed MO: 0x64 on the last part, its redelivery completes it", async () => {
    const { smsc, h } = await setup();
    h.failNext.inbound = 1;
    const p1 = Buffer.concat([Buffer.from([5, 0, 3, 9, 2, 1]), Buffer.from("one ")]);
    const p2 = Buffer.concat([Buffer.from([5, 0, 3, 9, 2, 2]), Buffer.from("two")]);
    expect(await smsc.sendMo({ from: "4477", to: "123", dataCoding: 0, esmClass: 0x40, shortMessage: p1 })).toBe(0);
    expect(await smsc.sendMo({ from: "4477", to: "123", dataCoding: 0, esmClass: 0x40, shortMessage: p2 })).toBe(0x64);
    expect(await smsc.sendMo({ from: "4477", to: "123", dataCoding: 0, esmClass: 0x40, shortMessage: p2 })).toBe(0);
    expect(h.inbound.map((m) => m.text)).toEqual(["one two"]);
  });

  test("an incomplete concatenated MO is delivered with what came once its time is up", async () => {
    const { smsc, h } = await setup({}, { mo_reassembly_timeout_ms: 150 });
    await smsc.sendMo({ from: "4477", to: "123", dataCoding: 0, esmClass: 0x40, shortMessage: Buffer.concat([Buffer.from([5, 0, 3, 4, 2, 1]), Buffer.from("half")]) });
    await smsc.waitFor(() => h!.inbound.length === 1, 2000);
    expect(h.inbound[0]!.text).toBe("half");
    expect(h.moIncomplete).toEqual([{ carrier: "sms", reason: "expired", delivered: true }]);
  });

  test("the reassembly buffer is bounded in bytes: a flood of first parts pushes the oldest out, counted (issue 11 item 7)", async () => {
    // Room for three 140-octet parts; every sender's message stops at part 1 of 2.
    const { smsc, h } = await setup({}, { mo_reassembly_max_bytes: 3 * 140 });
    const first = (i: number) => Buffer.concat([Buffer.from([5, 0, 3, i, 2, 1]), Buffer.alloc(140, 0x41 + i)]);
    for (let i = 0; i < 5; i++) expect(await smsc.sendMo({ from: `44770${i}`, to: "123", dataCoding: 0, esmClass: 0x40, shortMessage: first(i) })).toBe(0);
    await smsc.waitFor(() => h!.moIncomplete.length === 2, 2000);
    expect(h.moIncomplete).toEqual(Array(2).fill({ carrier: "sms", reason: "full", delivered: true }));
    // The two oldest went out with what came; the three newest still wait for their second part.
    expect(h.inbound.map((m) => [m.from, m.text])).toEqual([
      ["447700", "A".repeat(140)],
      ["447701", "B".repeat(140)],
    ]);
    await smsc.sendMo({ from: "447704", to: "123", dataCoding: 0, esmClass: 0x40, shortMessage: Buffer.concat([Buffer.from([5, 0, 3, 4, 2, 2]), Buffer.from("!")]) });
    expect(h.inbound.at(-1)!.text).toBe("E".repeat(140) + "!");
  });
});

test("no warning or error line of any carrier above carries a configured password", () => {
  expect(everyLogLine.filter((l) => l.level === "warn" || l.level === "error").length).toBeGreaterThan(0);
  expect(linesCarrying(everyLogLine, [...secretForms("esme", "secret"), ...secretForms("esme", "wrong")])).toEqual([]);
});

describe("submitState (what the router asks per claimed message)", () => {
  const bed = smppTestBed();
  test("a bound receiver does not make a carrier whose transmitter is refused look able to submit", async () => {
    // Bind refused for the transmitter only (0x0D): the receiver is up, nothing can go out.
    const { smsc, h } = await bed.setup({ bindStatus: (command) => (command === "bind_transmitter" ? 0x0d : 0) }, { bind_mode: "transmitter+receiver" });
    await smsc.waitFor(() => {
      const states = h.carrier.health().map((x) => x.state);
      return states.includes("up") && states.some((s) => s === "down" || s === "alarm");
    });
    expect(["down", "alarm"]).toContain(h.carrier.submitState());
  });

  test("up once the transmitter binds", async () => {
    const { smsc, h } = await bed.setup({}, { bind_mode: "transmitter+receiver" });
    await smsc.waitFor(() => h.carrier.health().every((x) => x.state === "up"));
    expect(h.carrier.submitState()).toBe("up");
  });
});
