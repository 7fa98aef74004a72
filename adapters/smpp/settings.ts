// The SMPP carrier's settings: the keys of [carriers.sms] (snake_case, as in the TOML file) and their
// defaults. The config layer validates types; `resolveSettings` checks the ranges that would make
// the session misbehave rather than fail loudly.

export type BindMode = "transceiver" | "transmitter+receiver";
export type Concatenation = "udh8" | "udh16" | "sar" | "payload";
/**
 * How submit_sm_resp ids and receipt ids relate (Kannel `msg-id-type`, Jasmin `dlr_msg_id_bases`):
 * "learn" (default) = every reading is tried until the carrier's base is learnt from its receipts;
 * "same" = one base on both sides; "resp_hex_receipt_dec" / "resp_dec_receipt_hex" as named;
 * "auto" = an id with a hex letter is hex, an all-digit id is decimal (Kannel's auto-detection).
 */
export type ReceiptIdBase = "learn" | "same" | "resp_hex_receipt_dec" | "resp_dec_receipt_hex" | "auto";
const receiptIdBases: readonly ReceiptIdBase[] = ["learn", "same", "resp_hex_receipt_dec", "resp_dec_receipt_hex", "auto"];

export interface SmppSettings {
  host: string;
  port: number;
  tls: boolean;
  /** Verify the SMSC's certificate (only with tls). */
  tls_verify: boolean;
  system_id: string;
  password: string;
  system_type: string;
  /** 0x34 for SMPP 3.4. */
  interface_version: number;
  bind_mode: BindMode;
  /** Binds (connections) per carrier; with "transmitter+receiver" each is a TX and an RX pair. */
  binds: number;
  /** Outstanding submit_sm per bind. */
  window: number;
  /** Segments (submit_sm PDUs) per second over the whole carrier, all binds together; 0 = unlimited. */
  tps: number;
  enquire_link_s: number;
  /** How long a request (bind, submit_sm, enquire_link) may wait for its response. */
  response_timeout_ms: number;
  connect_timeout_ms: number;
  reconnect_min_ms: number;
  reconnect_max_ms: number;
  /** After a bind refused for credentials (0x0D/0x0E/0x0F): retrying fast only gets the account locked. */
  bind_failure_retry_ms: number;
  /** How long a bind stops submitting after ESME_RTHROTTLED. */
  throttle_pause_ms: number;
  unbind_timeout_ms: number;
  source_alpha_ton: number;
  source_alpha_npi: number;
  source_numeric_ton: number;
  source_numeric_npi: number;
  source_short_code_ton: number;
  source_short_code_npi: number;
  /** A numeric sender of at most this many digits is a short code. */
  short_code_max_digits: number;
  dest_ton: number;
  dest_npi: number;
  service_type: string;
  concatenation: Concatenation;
  /** More parts than this is refused as "smpp:too-long" before anything is sent. */
  max_parts: number;
  registered_delivery: number;
  /** SMPP time string passed through ("" = SMSC default), e.g. "000001000000000R" for one day. */
  validity: string;
  /** submit_sm_resp statuses retried later; ESME_RTHROTTLED (0x58) is always temporary and pauses the bind. */
  temporary_status_codes: number[];
  receipt_id_base: ReceiptIdBase;
  /** How long the parts of a concatenated MO wait for the rest. */
  mo_reassembly_timeout_ms: number;
  /** Concatenated MO messages held at once; the oldest goes out incomplete beyond this. */
  mo_reassembly_max: number;
  /** Octets of concatenated MO parts held at once; the oldest message goes out incomplete beyond this. */
  mo_reassembly_max_bytes: number;
  /** Incoming command_length cap; anything larger is a framing error (message_payload fits in 64 KiB). */
  max_pdu_bytes: number;
}

export const smppDefaults: SmppSettings = {
  host: "127.0.0.1",
  port: 2775,
  tls: false,
  tls_verify: true,
  system_id: "",
  password: "",
  system_type: "",
  interface_version: 0x34,
  bind_mode: "transceiver",
  binds: 1,
  window: 10,
  tps: 50,
  enquire_link_s: 30,
  response_timeout_ms: 30_000,
  connect_timeout_ms: 10_000,
  reconnect_min_ms: 1_000,
  reconnect_max_ms: 60_000,
  bind_failure_retry_ms: 300_000,
  throttle_pause_ms: 1_000,
  unbind_timeout_ms: 5_000,
  source_alpha_ton: 5,
  source_alpha_npi: 0,
  source_numeric_ton: 1,
  source_numeric_npi: 1,
  source_short_code_ton: 3,
  source_short_code_npi: 0,
  short_code_max_digits: 8,
  dest_ton: 1,
  dest_npi: 1,
  service_type: "",
  concatenation: "udh8",
  max_parts: 6,
  registered_delivery: 1,
  validity: "",
  temporary_status_codes: [0x08, 0x14, 0x64],
  receipt_id_base: "learn",
  mo_reassembly_timeout_ms: 300_000,
  mo_reassembly_max: 1_000,
  // Thousands of ordinary parts (140 octets each), yet a bound far below 1,000 × 254 parts × 64 KiB.
  mo_reassembly_max_bytes: 8 * 1024 * 1024,
  max_pdu_bytes: 65_536,
};

/** Defaults under the given keys, with the ranges checked; throws naming the first bad key. */
export function resolveSettings(partial: Partial<SmppSettings>): SmppSettings {
  const s: SmppSettings = { ...smppDefaults, ...partial };
  const positive: (keyof SmppSettings)[] = [
    "port", "binds", "window", "response_timeout_ms", "connect_timeout_ms", "reconnect_min_ms",
    "reconnect_max_ms", "enquire_link_s", "max_parts", "mo_reassembly_timeout_ms", "mo_reassembly_max", "mo_reassembly_max_bytes",
  ];
  for (const k of positive) {
    const v = s[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new RangeError(`carriers.sms.${k} must be a positive number`);
  }
  if (s.tps < 0 || !Number.isFinite(s.tps)) throw new RangeError("carriers.sms.tps must be >= 0 (0 = unlimited)");
  if (s.max_parts > 255) throw new RangeError("carriers.sms.max_parts must be <= 255");
  if (s.reconnect_max_ms < s.reconnect_min_ms) throw new RangeError("carriers.sms.reconnect_max_ms must be >= reconnect_min_ms");
  if (s.max_pdu_bytes < 1024) throw new RangeError("carriers.sms.max_pdu_bytes must be >= 1024");
  if (s.validity !== "" && s.validity.length !== 16) throw new RangeError("carriers.sms.validity must be empty or a 16-character SMPP time");
  if (s.system_id.length > 15) throw new RangeError("carriers.sms.system_id is longer than 15 characters");
  if (s.password.length > 8) throw new RangeError("carriers.sms.password is longer than 8 characters");
  if (s.system_type.length > 12) throw new RangeError("carriers.sms.system_type is longer than 12 characters");
  if (!receiptIdBases.includes(s.receipt_id_base)) throw new RangeError(`carriers.sms.receipt_id_base must be one of ${receiptIdBases.join(", ")}`);
  if (s.service_type.length > 5) throw new RangeError("carriers.sms.service_type is longer than 5 characters");
  return s;
}
