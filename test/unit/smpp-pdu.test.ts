import { describe, expect, test } from "bun:test";
import smpp from "smpp";
import { Command, Tag, u16Tlv, u8Tlv, type ShortMessageFields } from "../../adapters/smpp/pdu.ts";
import { decodePdu, FrameReader, SmppFramingError } from "../../adapters/smpp/pdu-decode.ts";
import { encodeBind, encodeHeaderOnly, encodeIdResponse, encodeShortMessage } from "../../adapters/smpp/pdu-encode.ts";
import { seeded } from "../support/random.ts";

const sample: ShortMessageFields = {
  serviceType: "CMT",
  sourceTon: 5,
  sourceNpi: 0,
  sourceAddr: "ACME",
  destTon: 1,
  destNpi: 1,
  destAddr: "447700900123",
  esmClass: 0x40,
  protocolId: 0,
  priorityFlag: 1,
  scheduleDeliveryTime: "",
  validityPeriod: "000001000000000R",
  registeredDelivery: 1,
  replaceIfPresent: 0,
  dataCoding: 8,
  smDefaultMsgId: 0,
  shortMessage: Uint8Array.of(5, 0, 3, 0x2a, 2, 1, 0x04, 0x1f, 0xd8, 0x3d, 0xde, 0x00),
  tlvs: [u16Tlv(Tag.sar_msg_ref_num, 0x1234), u8Tlv(Tag.sar_total_segments, 2), u8Tlv(Tag.sar_segment_seqnum, 1)],
};

describe("encode/decode round trips", () => {
  test("submit_sm with TLVs", () => {
    const buf = encodeShortMessage(Command.submit_sm, 77, sample);
    expect(buf.readUInt32BE(0)).toBe(buf.length);
    const pdu = decodePdu(buf);
    expect(pdu.commandId).toBe(Command.submit_sm);
    expect(pdu.sequence).toBe(77);
    expect({ ...pdu.sm!, shortMessage: [...pdu.sm!.shortMessage], tlvs: pdu.sm!.tlvs.map((t) => [t.tag, [...t.value]]) }).toEqual({
      ...sample,
      shortMessage: [...sample.shortMessage],
      tlvs: sample.tlvs.map((t) => [t.tag, [...t.value]]),
    });
  });

  test("bind, id responses, header-only PDUs", () => {
    const bind = decodePdu(encodeBind(Command.bind_transceiver, 1, { systemId: "sys", password: "pw", systemType: "", interfaceVersion: 0x34, addrTon: 0, addrNpi: 0, addressRange: "" }));
    expect(bind.bind).toEqual({ systemId: "sys", password: "pw", systemType: "", interfaceVersion: 0x34, addrTon: 0, addrNpi: 0, addressRange: "" });
    const resp = decodePdu(encodeIdResponse(Command.submit_sm_resp, 0, 9, "ABC123"));
    expect([resp.commandId, resp.status, resp.sequence, resp.id]).toEqual([Command.submit_sm_resp, 0, 9, "ABC123"]);
    // Error responses carry no body (5.0) and must still decode.
    const err = encodeIdResponse(Command.submit_sm_resp, 0x58, 10, "ignored");
    expect(err.length).toBe(16);
    expect(decodePdu(err)).toMatchObject({ status: 0x58, id: "" });
    expect(decodePdu(encodeHeaderOnly(Command.enquire_link, 0, 3))).toEqual({ commandId: Command.enquire_link, status: 0, sequence: 3 });
  });

  test("an error response with a body (3.4 style) also decodes", () => {
    const withBody = Buffer.concat([encodeHeaderOnly(Command.submit_sm_resp, 0x0b, 4), Buffer.from([0])]);
    withBody.writeUInt32BE(withBody.length, 0);
    expect(decodePdu(withBody)).toMatchObject({ status: 0x0b, id: "" });
  });

  test("node-smpp (reference codec) reads our submit_sm and we read its deliver_sm", () => {
    const theirs = new smpp.PDU(encodeShortMessage(Command.submit_sm, 5, { ...sample, dataCoding: 0, esmClass: 0, shortMessage: Buffer.from("hello"), tlvs: [] }));
    expect(theirs.command).toBe("submit_sm");
    expect([theirs.source_addr, theirs.destination_addr, theirs.registered_delivery, theirs.data_coding]).toEqual(["ACME", "447700900123", 1, 0]);
    expect(theirs.short_message.message).toBe("hello");

    const dlr = new smpp.PDU("deliver_sm", {
      sequence_number: 42,
      source_addr: "4477",
      destination_addr: "ACME",
      esm_class: 4,
      data_coding: 0,
      short_message: Buffer.from("id:1 stat:DELIVRD"),
      receipted_message_id: "1",
      message_state: 2,
    }).toBuffer();
    const ours = decodePdu(dlr);
    expect(ours.sequence).toBe(42);
    expect(ours.sm!.esmClass).toBe(4);
    expect(Buffer.from(ours.sm!.shortMessage).toString()).toBe("id:1 stat:DELIVRD");
    expect(ours.sm!.tlvs.map((t) => t.tag).sort()).toEqual([Tag.receipted_message_id, Tag.message_state].sort());
  });

  test("encoding refuses over-long fields instead of truncating", () => {
    expect(() => encodeShortMessage(Command.submit_sm, 1, { ...sample, sourceAddr: "1".repeat(21) })).toThrow(RangeError);
    expect(() => encodeShortMessage(Command.submit_sm, 1, { ...sample, shortMessage: new Uint8Array(255) })).toThrow(RangeError);
  });
});

describe("framing", () => {
  test("frames come out whole whatever the chunking", () => {
    const a = encodeShortMessage(Command.deliver_sm, 1, sample);
    const b = encodeHeaderOnly(Command.enquire_link, 0, 2);
    const c = encodeIdResponse(Command.submit_sm_resp, 0, 3, "x");
    const stream = Buffer.concat([a, b, c]);
    for (const size of [1, 3, 7, 16, stream.length]) {
      const r = new FrameReader(65536);
      const seqs: number[] = [];
      for (let i = 0; i < stream.length; i += size) r.feed(stream.subarray(i, i + size), (f) => seqs.push(decodePdu(f).sequence));
      expect(seqs).toEqual([1, 2, 3]);
      expect(r.buffered).toBe(0);
    }
  });

  test("oversized or undersized command_length is a fatal framing error", () => {
    const big = encodeHeaderOnly(Command.enquire_link, 0, 9);
    big.writeUInt32BE(70_000, 0);
    const small = Buffer.from([0, 0, 0, 8, 0, 0, 0, 0x15]);
    for (const bad of [big, small]) {
      let err: unknown;
      try {
        new FrameReader(65536).feed(bad, () => {});
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SmppFramingError);
      expect((err as SmppFramingError).fatal).toBe(true);
      expect((err as SmppFramingError).nackStatus).toBe(0x02);
    }
  });

  test("a well-delimited frame with a broken body is a non-fatal error naming its sequence", () => {
    const buf = encodeShortMessage(Command.deliver_sm, 31, sample);
    const truncated = Buffer.from(buf.subarray(0, 40));
    truncated.writeUInt32BE(40, 0);
    let err: unknown;
    try {
      decodePdu(truncated);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SmppFramingError);
    expect((err as SmppFramingError).fatal).toBe(false);
    expect((err as SmppFramingError).sequence).toBe(31);
  });

  test("fuzz: 5000 mutated and random PDUs never throw anything but SmppFramingError (seeded)", () => {
    const rnd = seeded(0x5eed);
    const seeds = [
      encodeShortMessage(Command.deliver_sm, 1, sample),
      encodeShortMessage(Command.submit_sm, 2, { ...sample, tlvs: [] }),
      encodeBind(Command.bind_receiver, 3, { systemId: "a", password: "b", systemType: "c", interfaceVersion: 0x34, addrTon: 1, addrNpi: 1, addressRange: "" }),
      encodeIdResponse(Command.bind_transceiver_resp, 0, 4, "SMSC", [u8Tlv(Tag.sc_interface_version, 0x34)]),
      encodeIdResponse(Command.submit_sm_resp, 0, 5, "123"),
      encodeHeaderOnly(Command.generic_nack, 3, 6),
    ];
    const started = performance.now();
    let frames = 0;
    let framingErrors = 0;
    for (let i = 0; i < 5000; i++) {
      let buf: Buffer;
      const mode = rnd();
      if (mode < 0.15) {
        buf = Buffer.alloc(Math.floor(rnd() * 300));
        for (let k = 0; k < buf.length; k++) buf[k] = Math.floor(rnd() * 256);
      } else {
        buf = Buffer.from(seeds[Math.floor(rnd() * seeds.length)]!);
        const flips = 1 + Math.floor(rnd() * 6);
        for (let k = 0; k < flips; k++) buf[Math.floor(rnd() * buf.length)] = Math.floor(rnd() * 256);
        // Keep command_length honest half the time so the body decoder gets exercised.
        if (rnd() < 0.5) buf.writeUInt32BE(buf.length, 0);
        if (rnd() < 0.2) buf = buf.subarray(0, Math.floor(rnd() * buf.length));
      }
      const reader = new FrameReader(65536);
      try {
        for (let o = 0; o < buf.length; ) {
          const n = 1 + Math.floor(rnd() * 40);
          reader.feed(buf.subarray(o, o + n), (f) => {
            frames++;
            try {
              decodePdu(f);
            } catch (e) {
              if (!(e instanceof SmppFramingError)) throw e;
              framingErrors++;
            }
          });
          o += n;
        }
      } catch (e) {
        if (!(e instanceof SmppFramingError)) throw e;
        framingErrors++;
      }
    }
    expect(frames).toBeGreaterThan(1000);
    expect(framingErrors).toBeGreaterThan(100);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
