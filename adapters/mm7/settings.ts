// Per-carrier MM7 settings. Keys are snake_case so they map 1:1 onto [carriers.mms] (and its `mm7` extras
// table) in the TOML config; `resolveMm7Settings` checks whatever the config layer does not.

/** The schema release names seen in the wild; namespace and MM7Version are independent settings (research §1.4). */
export const mm7Presets = {
  "REL-6-MM7-1-4": { namespace: "REL-6-MM7-1-4", version: "6.8.0" },
  "REL-5-MM7-1-3": { namespace: "REL-5-MM7-1-3", version: "5.3.0" },
  "REL-5-MM7-1-0": { namespace: "REL-5-MM7-1-0", version: "5.3.0" },
} as const;

const namespaceBase = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/";

/** Optional SubmitReq elements a carrier may opt into (many MMSCs reject or strip some; research §3.1). */
export const optionalSubmitElements = [
  "ServiceCode",
  "MessageClass",
  "TimeStamp",
  "EarliestDeliveryTime",
  "ExpiryDate",
  "DeliveryReport",
  "ReadReply",
  "Priority",
  "Subject",
  "ChargedParty",
  "ChargedPartyID",
  "DistributionIndicator",
  "DeliveryCondition",
  "ApplicID",
  "ReplyApplicID",
  "AuxApplicInfo",
  "ContentClass",
  "DRMContent",
  "allowAdaptations",
] as const;
export type OptionalSubmitElement = (typeof optionalSubmitElements)[number];

export interface Mm7Settings {
  /** Carrier name reported in receipts, inbound messages and health. */
  name: string;
  url: string;
  /** HTTP Basic towards the MMSC; empty = no Authorization header. */
  username: string;
  password: string;
  vaspid: string;
  vasid: string;
  service_code: string;
  /** Schema release, e.g. "REL-6-MM7-1-4"; the namespace URI is namespaceBase + this. */
  namespace: string;
  /** MM7Version element, x.y.z. */
  version: string;
  /** "default-namespace": <SubmitReq xmlns="…"> (most widely accepted); "prefix": <mm7:SubmitReq>. */
  xml_style: "default-namespace" | "prefix";
  /** How the sender goes into SenderAddress; "auto" = '@' → RFC2822Address, ≤ 6 digits → ShortCode, else Number. */
  sender_address_type: "auto" | "number" | "shortcode" | "rfc2822" | "none";
  /** Drop a leading "+" from Number addresses (Skycore wants international format without "+"). */
  strip_plus: boolean;
  /** Optional SubmitReq elements to send (each also needs a non-empty value). */
  submit_elements: OptionalSubmitElement[];
  message_class: "Personal" | "Informational" | "Advertisement" | "Auto";
  priority: "Normal" | "High" | "Low";
  /** ExpiryDate = submit time + this (sent as an absolute dateTime); 0 = not sent. */
  expiry_seconds: number;
  /** EarliestDeliveryTime = submit time + this; 0 = not sent. */
  earliest_delivery_seconds: number;
  read_reply: boolean;
  charged_party: "" | "Sender" | "Recipient" | "Both" | "Neither" | "ThirdParty";
  charged_party_id: string;
  distribution_indicator: boolean;
  delivery_condition: number[];
  applic_id: string;
  reply_applic_id: string;
  aux_applic_info: string;
  content_class: "" | "text" | "image-basic" | "image-rich" | "video-basic" | "video-rich" | "megapixel" | "content-basic" | "content-rich";
  drm_content: boolean;
  allow_adaptations: boolean;
  /** Limit on the MM as the MMSC sees it after decoding (media bytes, text, SMIL, part headers). */
  max_message_bytes: number;
  timeout_ms: number;
  /** Submits in flight at once. */
  concurrency: number;
  /** Submits per second (token bucket); 0 = unlimited. */
  rate: number;
  /** Token bucket size: how many submits may go back to back after an idle spell. */
  rate_burst: number;
  /** Submits waiting for a slot above which new ones are answered temporary "mm7:busy" at once. */
  queue_limit: number;
  /** SubmitRsp StatusCodes meaning the recipient cannot take MMS, so the fallback SMS may go out. */
  fallback_status_codes: number[];
  /** DeliveryReport MMStatus values (case-insensitive) meaning the handset cannot take MMS. */
  fallback_mmstatus: string[];
  /** HTTP 401/403/404 and MM7 4001/4002 (configuration problems): retry after this long, 0 = permanent failure. */
  config_error_retry_after_ms: number;
  /** Encoded media parts kept for reuse across messages, in bytes. */
  media_cache_bytes: number;
  /** Basic auth the MMSC must present on the inbound endpoint; empty username = no auth. */
  inbound_username: string;
  inbound_password: string;
  /** Inbound body limit; 0 = 2 × max_message_bytes + 64 KiB (base64 inflation plus SOAP). */
  inbound_max_bytes: number;
}

export const mm7Defaults: Mm7Settings = {
  name: "mms",
  url: "",
  username: "",
  password: "",
  vaspid: "",
  vasid: "",
  service_code: "",
  namespace: "REL-6-MM7-1-4",
  version: "6.8.0",
  xml_style: "default-namespace",
  sender_address_type: "auto",
  strip_plus: false,
  submit_elements: ["ServiceCode", "DeliveryReport", "Subject", "allowAdaptations"],
  message_class: "Informational",
  priority: "Normal",
  expiry_seconds: 0,
  earliest_delivery_seconds: 0,
  read_reply: false,
  charged_party: "",
  charged_party_id: "",
  distribution_indicator: true,
  delivery_condition: [],
  applic_id: "",
  reply_applic_id: "",
  aux_applic_info: "",
  content_class: "",
  drm_content: false,
  allow_adaptations: true,
  max_message_bytes: 307200,
  timeout_ms: 30000,
  concurrency: 32,
  rate: 0,
  rate_burst: 1,
  queue_limit: 10000,
  // 2002 "address not serviced by this MMSC", 2003 "address not found", 4007 "service denied for the
  // recipient": all say the number cannot get MMS here, while an SMS may still reach it (research §5.1).
  fallback_status_codes: [2002, 2003, 4007],
  // Unrecognised (both spellings) = "the handset cannot download the MMS"; NotSupported is Skycore's.
  fallback_mmstatus: ["Unrecognised", "Unrecognized", "NotSupported"],
  config_error_retry_after_ms: 300000,
  media_cache_bytes: 32 * 1024 * 1024,
  inbound_username: "",
  inbound_password: "",
  inbound_max_bytes: 0,
};

const enums: Partial<Record<keyof Mm7Settings, readonly string[]>> = {
  xml_style: ["default-namespace", "prefix"],
  sender_address_type: ["auto", "number", "shortcode", "rfc2822", "none"],
  message_class: ["Personal", "Informational", "Advertisement", "Auto"],
  priority: ["Normal", "High", "Low"],
  charged_party: ["", "Sender", "Recipient", "Both", "Neither", "ThirdParty"],
  content_class: ["", "text", "image-basic", "image-rich", "video-basic", "video-rich", "megapixel", "content-basic", "content-rich"],
};

const numberLists = new Set(["fallback_status_codes", "delivery_condition"]);

/** Merges `input` over the defaults and checks every key; throws an Error naming the first bad key. */
export function resolveMm7Settings(input: Record<string, unknown>): Mm7Settings {
  const out: Record<string, unknown> = { ...mm7Defaults };
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (!(key in mm7Defaults)) throw new Error(`mm7: unknown setting "${key}"`);
    const def = (mm7Defaults as unknown as Record<string, unknown>)[key];
    const ok = Array.isArray(def)
      ? Array.isArray(value) && value.every((v) => typeof v === (numberLists.has(key) ? "number" : "string"))
      : typeof value === typeof def && (typeof value !== "number" || (Number.isFinite(value) && value >= 0));
    if (!ok) throw new Error(`mm7: setting "${key}" has the wrong type (expected like ${JSON.stringify(def)})`);
    const allowed = enums[key as keyof Mm7Settings];
    if (allowed && !allowed.includes(value as string)) throw new Error(`mm7: setting "${key}" must be one of ${allowed.join(", ")}`);
    out[key] = value;
  }
  const s = out as unknown as Mm7Settings;
  for (const el of s.submit_elements) {
    if (!(optionalSubmitElements as readonly string[]).includes(el)) throw new Error(`mm7: submit_elements: unknown element "${el}"`);
  }
  if (!/^\d+\.\d+\.\d+$/.test(s.version)) throw new Error(`mm7: version "${s.version}" is not x.y.z`);
  if (!/^[A-Za-z0-9._-]+$/.test(s.namespace)) throw new Error(`mm7: namespace "${s.namespace}" is not a schema release name`);
  if (s.concurrency < 1) throw new Error("mm7: concurrency must be at least 1");
  if (s.rate_burst < 1) throw new Error("mm7: rate_burst must be at least 1");
  return s;
}

export function namespaceUri(s: Pick<Mm7Settings, "namespace">): string {
  return namespaceBase + s.namespace;
}

export function inboundLimit(s: Mm7Settings): number {
  return s.inbound_max_bytes > 0 ? s.inbound_max_bytes : 2 * s.max_message_bytes + 65536;
}
