// Encoding the PDUs an ESME sends: each sized first and written in one allocation.
import { CSTRING_MAX as MAX, HEADER_LENGTH, type BindFields, type ShortMessageFields, type Tlv } from "./pdu.ts";

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
