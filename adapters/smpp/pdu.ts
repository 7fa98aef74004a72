// The SMPP 3.4 PDU codec for what an ESME sends and receives: a 16-octet header, the mandatory body,
// then TLVs. Decoding never trusts a length it has not checked against the frame, and every failure
// is an SmppFramingError, so a hostile or broken peer can only cost us the connection.

export const Command = {
  generic_nack: 0x80000000,
  bind_receiver: 0x00000001,
  bind_receiver_resp: 0x80000001,
  bind_transmitter: 0x00000002,
  bind_transmitter_resp: 0x80000002,
  submit_sm: 0x00000004,
  submit_sm_resp: 0x80000004,
  deliver_sm: 0x00000005,
  deliver_sm_resp: 0x80000005,
  unbind: 0x00000006,
  unbind_resp: 0x80000006,
  bind_transceiver: 0x00000009,
  bind_transceiver_resp: 0x80000009,
  enquire_link: 0x00000015,
  enquire_link_resp: 0x80000015,
} as const;

export const RESPONSE_BIT = 0x80000000;

export const Tag = {
  receipted_message_id: 0x001e,
  sar_msg_ref_num: 0x020c,
  sar_total_segments: 0x020e,
  sar_segment_seqnum: 0x020f,
  sc_interface_version: 0x0210,
  network_error_code: 0x0423,
  message_payload: 0x0424,
  message_state: 0x0427,
  congestion_state: 0x0428,
} as const;

export const HEADER_LENGTH = 16;

/**
 * A PDU we cannot use. `fatal`: the frame boundary itself is lost (command_length out of range), so
 * the byte stream cannot be resynchronised and the connection must go. Otherwise the frame was
 * delimited correctly but its body is malformed: answer generic_nack and carry on.
 */
export class SmppFramingError extends Error {
  constructor(
    message: string,
    readonly fatal: boolean,
    /** The command_status for the generic_nack we answer with. */
    readonly nackStatus: number,
    /** The offending PDU's sequence_number when it could be read, else 0. */
    readonly sequence: number,
  ) {
    super(message);
    this.name = "SmppFramingError";
  }
}

export interface Tlv {
  tag: number;
  value: Uint8Array;
}

/** The body shared by submit_sm and deliver_sm (3.4 §4.4.1 / §4.6.1). */
export interface ShortMessageFields {
  serviceType: string;
  sourceTon: number;
  sourceNpi: number;
  sourceAddr: string;
  destTon: number;
  destNpi: number;
  destAddr: string;
  esmClass: number;
  protocolId: number;
  priorityFlag: number;
  scheduleDeliveryTime: string;
  validityPeriod: string;
  registeredDelivery: number;
  replaceIfPresent: number;
  dataCoding: number;
  smDefaultMsgId: number;
  shortMessage: Uint8Array;
  tlvs: Tlv[];
}

export interface BindFields {
  systemId: string;
  password: string;
  systemType: string;
  interfaceVersion: number;
  addrTon: number;
  addrNpi: number;
  addressRange: string;
}

/**
 * A decoded PDU. The body sits in the field its command uses: `sm` for submit_sm/deliver_sm, `bind`
 * for bind_*, `id` for the message_id of *_sm_resp and the system_id of bind_*_resp. A PDU whose
 * command we do not know has only the header, so the session can answer it with generic_nack.
 */
export interface Pdu {
  commandId: number;
  status: number;
  sequence: number;
  sm?: ShortMessageFields;
  bind?: BindFields;
  id?: string;
  tlvs?: Tlv[];
}

// ---- encoding ------------------------------------------------------------------------------

/** C-octet string maxima including the NUL (3.4 §4): longer values are a caller bug, not truncated. */
const MAX = { serviceType: 6, addr: 21, time: 17, systemId: 16, password: 9, systemType: 13, addressRange: 41, messageId: 65 };

function cstringSize(s: string, max: number, field: string): number {
  // Latin-1 octets: one per UTF-16 unit for the ASCII values SMPP allows in these fields.
  if (s.length + 1 > max) throw new RangeError(`${field} longer than ${max - 1} octets`);
  return s.length + 1;
}

function writeCstring(buf: Buffer, offset: number, s: string): number {
  offset += buf.write(s, offset, "latin1");
  buf[offset] = 0;
  return offset + 1;
}

function writeHeader(buf: Buffer, commandId: number, status: number, sequence: number): void {
  buf.writeUInt32BE(buf.length, 0);
  buf.writeUInt32BE(commandId >>> 0, 4);
  buf.writeUInt32BE(status >>> 0, 8);
  buf.writeUInt32BE(sequence >>> 0, 12);
}

function tlvsSize(tlvs: readonly Tlv[]): number {
  let n = 0;
  for (const t of tlvs) {
    if (t.value.length > 0xffff) throw new RangeError(`TLV 0x${t.tag.toString(16)} longer than 65535 octets`);
    n += 4 + t.value.length;
  }
  return n;
}

function writeTlvs(buf: Buffer, offset: number, tlvs: readonly Tlv[]): number {
  for (const t of tlvs) {
    buf.writeUInt16BE(t.tag, offset);
    buf.writeUInt16BE(t.value.length, offset + 2);
    buf.set(t.value, offset + 4);
    offset += 4 + t.value.length;
  }
  return offset;
}

/** submit_sm (0x04) or deliver_sm (0x05): one allocation, sized first. */
export function encodeShortMessage(commandId: number, sequence: number, f: ShortMessageFields): Buffer {
  if (f.shortMessage.length > 254) throw new RangeError("short_message longer than 254 octets; use message_payload");
  const size =
    HEADER_LENGTH +
    cstringSize(f.serviceType, MAX.serviceType, "service_type") +
    2 +
    cstringSize(f.sourceAddr, MAX.addr, "source_addr") +
    2 +
    cstringSize(f.destAddr, MAX.addr, "destination_addr") +
    3 +
    cstringSize(f.scheduleDeliveryTime, MAX.time, "schedule_delivery_time") +
    cstringSize(f.validityPeriod, MAX.time, "validity_period") +
    5 +
    f.shortMessage.length +
    tlvsSize(f.tlvs);
  const buf = Buffer.allocUnsafe(size);
  writeHeader(buf, commandId, 0, sequence);
  let o = writeCstring(buf, HEADER_LENGTH, f.serviceType);
  buf[o++] = f.sourceTon;
  buf[o++] = f.sourceNpi;
  o = writeCstring(buf, o, f.sourceAddr);
  buf[o++] = f.destTon;
  buf[o++] = f.destNpi;
  o = writeCstring(buf, o, f.destAddr);
  buf[o++] = f.esmClass;
  buf[o++] = f.protocolId;
  buf[o++] = f.priorityFlag;
  o = writeCstring(buf, o, f.scheduleDeliveryTime);
  o = writeCstring(buf, o, f.validityPeriod);
  buf[o++] = f.registeredDelivery;
  buf[o++] = f.replaceIfPresent;
  buf[o++] = f.dataCoding;
  buf[o++] = f.smDefaultMsgId;
  buf[o++] = f.shortMessage.length;
  buf.set(f.shortMessage, o);
  o += f.shortMessage.length;
  writeTlvs(buf, o, f.tlvs);
  return buf;
}

export function encodeBind(commandId: number, sequence: number, b: BindFields): Buffer {
  const size =
    HEADER_LENGTH +
    cstringSize(b.systemId, MAX.systemId, "system_id") +
    cstringSize(b.password, MAX.password, "password") +
    cstringSize(b.systemType, MAX.systemType, "system_type") +
    3 +
    cstringSize(b.addressRange, MAX.addressRange, "address_range");
  const buf = Buffer.allocUnsafe(size);
  writeHeader(buf, commandId, 0, sequence);
  let o = writeCstring(buf, HEADER_LENGTH, b.systemId);
  o = writeCstring(buf, o, b.password);
  o = writeCstring(buf, o, b.systemType);
  buf[o++] = b.interfaceVersion;
  buf[o++] = b.addrTon;
  buf[o++] = b.addrNpi;
  writeCstring(buf, o, b.addressRange);
  return buf;
}

/**
 * A response whose body is one C-octet string: submit_sm_resp / deliver_sm_resp (message_id) and
 * bind_*_resp (system_id). An error response carries no body, as 5.0 clarifies.
 */
export function encodeIdResponse(commandId: number, status: number, sequence: number, id = "", tlvs: readonly Tlv[] = []): Buffer {
  const bodyless = status !== 0;
  const size = HEADER_LENGTH + (bodyless ? 0 : cstringSize(id, MAX.messageId, "message_id") + tlvsSize(tlvs));
  const buf = Buffer.allocUnsafe(size);
  writeHeader(buf, commandId, status, sequence);
  if (!bodyless) writeTlvs(buf, writeCstring(buf, HEADER_LENGTH, id), tlvs);
  return buf;
}

/** enquire_link(_resp), unbind(_resp), generic_nack: the header is the whole PDU. */
export function encodeHeaderOnly(commandId: number, status: number, sequence: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LENGTH);
  writeHeader(buf, commandId, status, sequence);
  return buf;
}

// ---- decoding ------------------------------------------------------------------------------

/** Reads fields left to right inside [offset, end) of one frame; any overrun is a framing error. */
class BodyReader {
  constructor(
    private readonly buf: Buffer,
    public offset: number,
    private readonly end: number,
    private readonly sequence: number,
  ) {}

  private fail(what: string): never {
    throw new SmppFramingError(`malformed PDU body: ${what}`, false, 0x02, this.sequence);
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  u8(field: string): number {
    if (this.offset >= this.end) this.fail(`${field} missing`);
    return this.buf[this.offset++]!;
  }

  cstring(field: string, max: number): string {
    const nul = this.buf.indexOf(0, this.offset);
    if (nul < 0 || nul >= this.end) this.fail(`${field} not terminated`);
    // Peers overrun these maxima in the wild (long ids); the frame bound is what protects us.
    if (nul - this.offset + 1 > Math.max(max, 256)) this.fail(`${field} too long`);
    const s = this.buf.toString("latin1", this.offset, nul);
    this.offset = nul + 1;
    return s;
  }

  bytes(n: number, field: string): Uint8Array {
    if (n > this.remaining) this.fail(`${field} overruns the PDU`);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  tlvs(): Tlv[] {
    const out: Tlv[] = [];
    // Fewer than 4 trailing octets cannot be a TLV; some SMSCs pad, so they are ignored.
    while (this.remaining >= 4) {
      const tag = this.buf.readUInt16BE(this.offset);
      const len = this.buf.readUInt16BE(this.offset + 2);
      this.offset += 4;
      out.push({ tag, value: this.bytes(len, `TLV 0x${tag.toString(16)}`) });
    }
    return out;
  }
}

function decodeShortMessage(r: BodyReader): ShortMessageFields {
  const serviceType = r.cstring("service_type", MAX.serviceType);
  const sourceTon = r.u8("source_addr_ton");
  const sourceNpi = r.u8("source_addr_npi");
  const sourceAddr = r.cstring("source_addr", MAX.addr);
  const destTon = r.u8("dest_addr_ton");
  const destNpi = r.u8("dest_addr_npi");
  const destAddr = r.cstring("destination_addr", MAX.addr);
  const esmClass = r.u8("esm_class");
  const protocolId = r.u8("protocol_id");
  const priorityFlag = r.u8("priority_flag");
  const scheduleDeliveryTime = r.cstring("schedule_delivery_time", MAX.time);
  const validityPeriod = r.cstring("validity_period", MAX.time);
  const registeredDelivery = r.u8("registered_delivery");
  const replaceIfPresent = r.u8("replace_if_present_flag");
  const dataCoding = r.u8("data_coding");
  const smDefaultMsgId = r.u8("sm_default_msg_id");
  const smLength = r.u8("sm_length");
  const shortMessage = r.bytes(smLength, "short_message");
  return {
    serviceType, sourceTon, sourceNpi, sourceAddr, destTon, destNpi, destAddr, esmClass, protocolId,
    priorityFlag, scheduleDeliveryTime, validityPeriod, registeredDelivery, replaceIfPresent, dataCoding,
    smDefaultMsgId, shortMessage, tlvs: r.tlvs(),
  };
}

/** Decodes one whole frame (exactly command_length octets, as FrameReader hands them out). */
export function decodePdu(frame: Uint8Array): Pdu {
  const buf = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (buf.length < HEADER_LENGTH) throw new SmppFramingError(`PDU shorter than its header (${buf.length})`, true, 0x02, 0);
  const length = buf.readUInt32BE(0);
  const commandId = buf.readUInt32BE(4);
  const status = buf.readUInt32BE(8);
  const sequence = buf.readUInt32BE(12);
  if (length !== buf.length) throw new SmppFramingError(`command_length ${length} but frame of ${buf.length}`, true, 0x02, sequence);
  const pdu: Pdu = { commandId, status, sequence };
  const r = new BodyReader(buf, HEADER_LENGTH, length, sequence);
  switch (commandId) {
    case Command.submit_sm:
    case Command.deliver_sm:
      pdu.sm = decodeShortMessage(r);
      break;
    case Command.bind_receiver:
    case Command.bind_transmitter:
    case Command.bind_transceiver:
      pdu.bind = {
        systemId: r.cstring("system_id", MAX.systemId),
        password: r.cstring("password", MAX.password),
        systemType: r.cstring("system_type", MAX.systemType),
        interfaceVersion: r.u8("interface_version"),
        addrTon: r.u8("addr_ton"),
        addrNpi: r.u8("addr_npi"),
        addressRange: r.cstring("address_range", MAX.addressRange),
      };
      break;
    case Command.submit_sm_resp:
    case Command.deliver_sm_resp:
    case Command.bind_receiver_resp:
    case Command.bind_transmitter_resp:
    case Command.bind_transceiver_resp:
      // Error responses may or may not carry a body (3.4 vs 5.0): accept both.
      pdu.id = r.remaining > 0 ? r.cstring("message_id", MAX.messageId) : "";
      pdu.tlvs = r.tlvs();
      break;
    default:
      // Header-only commands, and commands we do not implement: the body is not ours to read.
      break;
  }
  return pdu;
}

/**
 * Cuts a TCP byte stream into frames. A command_length below the header size or above `maxLength`
 * means the stream is garbage (or not SMPP, e.g. TLS against a plain port): that is fatal, because
 * the next frame boundary cannot be found again.
 */
export class FrameReader {
  private pending: Buffer | null = null;

  constructor(private readonly maxLength: number) {}

  /** Calls onFrame for each complete frame in order; throws a fatal SmppFramingError on garbage. */
  feed(chunk: Uint8Array, onFrame: (frame: Buffer) => void): void {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.pending) {
      buf = Buffer.concat([this.pending, buf]);
      this.pending = null;
    }
    let offset = 0;
    while (buf.length - offset >= 4) {
      const length = buf.readUInt32BE(offset);
      if (length < HEADER_LENGTH || length > this.maxLength) {
        const sequence = buf.length - offset >= HEADER_LENGTH ? buf.readUInt32BE(offset + 12) : 0;
        throw new SmppFramingError(`command_length ${length} outside ${HEADER_LENGTH}..${this.maxLength}`, true, 0x02, sequence);
      }
      if (buf.length - offset < length) break;
      onFrame(buf.subarray(offset, offset + length));
      offset += length;
    }
    // Copy the tail: a subarray would pin the whole chunk until the rest arrives.
    if (offset < buf.length) this.pending = Buffer.from(buf.subarray(offset));
  }

  /** Octets waiting for the rest of their frame. */
  get buffered(): number {
    return this.pending?.length ?? 0;
  }
}

export function findTlv(tlvs: readonly Tlv[] | undefined, tag: number): Uint8Array | undefined {
  if (!tlvs) return undefined;
  for (const t of tlvs) if (t.tag === tag) return t.value;
  return undefined;
}

export function u8Tlv(tag: number, value: number): Tlv {
  return { tag, value: Uint8Array.of(value & 0xff) };
}

export function u16Tlv(tag: number, value: number): Tlv {
  return { tag, value: Uint8Array.of((value >> 8) & 0xff, value & 0xff) };
}
