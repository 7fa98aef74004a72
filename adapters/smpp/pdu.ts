// The SMPP 3.4 PDU's vocabulary: command ids, TLV tags, the decoded shapes and the field limits the
// encoder (pdu-encode.ts) and decoder (pdu-decode.ts) share.

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

/** C-octet string maxima including the NUL (3.4 §4): longer values are a caller bug, not truncated. */
export const CSTRING_MAX = { serviceType: 6, addr: 21, time: 17, systemId: 16, password: 9, systemType: 13, addressRange: 41, messageId: 65 };

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
