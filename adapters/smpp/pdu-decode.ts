// Decoding what a peer sends. Decoding never trusts a length it has not checked against the frame, and
// every failure is an SmppFramingError, so a hostile or broken peer can only cost us the connection.
import { Command, CSTRING_MAX as MAX, HEADER_LENGTH, type Pdu, type ShortMessageFields, type Tlv } from "./pdu.ts";

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
