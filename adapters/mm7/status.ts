// The one place that says what MM7 status codes and MMStatus values mean to the pipeline (research §5).
import type { CarrierReceipt } from "../carrier.ts";

/**
 * "config": our configuration is wrong (credentials, VASPID, version), so every message would fail alike:
 * raise the health alarm and retry later (config_error_retry_after_ms), or fail permanently when that is 0.
 */
export type StatusClass = "ok" | "temporary" | "permanent" | "config";

export interface StatusRow {
  name: string;
  class: StatusClass;
  /** Raise the health alarm even though the message fails permanently. */
  alarm?: boolean;
}

/** 23.140 request status codes; names from Mbuni's table plus the Rel-6 additions listed by drivefast/mmsgw. */
export const statusCodes: Record<number, StatusRow> = {
  1000: { name: "Success", class: "ok" },
  // Partial success: with one recipient per request the accepted part is the whole message.
  1100: { name: "Partial success", class: "ok" },
  2000: { name: "Client error", class: "permanent" },
  2001: { name: "Operation restricted", class: "permanent", alarm: true },
  2002: { name: "Address Error", class: "permanent" },
  2003: { name: "Address Not Found", class: "permanent" },
  2004: { name: "Multimedia content refused", class: "permanent" },
  2005: { name: "Message ID Not found", class: "permanent" },
  2006: { name: "LinkedID not found", class: "permanent" },
  2007: { name: "Message format corrupt", class: "permanent" },
  2008: { name: "Application ID not found", class: "permanent" },
  2009: { name: "Reply Application ID not found", class: "permanent" },
  3000: { name: "Server Error", class: "temporary" },
  3001: { name: "Not Possible", class: "permanent" },
  // Mbuni retries 3002, but "could not complete the service" does not change on a resend.
  3002: { name: "Message rejected", class: "permanent" },
  3003: { name: "Multiple addresses not supported", class: "permanent" },
  3004: { name: "Application Addressing not supported", class: "permanent" },
  3005: { name: "Command Rejected", class: "permanent" },
  4000: { name: "General service error", class: "temporary" },
  4001: { name: "Improper identification", class: "config" },
  4002: { name: "Unsupported version", class: "config" },
  4003: { name: "Unsupported operation", class: "permanent" },
  4004: { name: "Validation error", class: "permanent" },
  4005: { name: "Service error", class: "permanent" },
  4006: { name: "Service unavailable", class: "temporary" },
  4007: { name: "Service denied", class: "permanent" },
  4008: { name: "Application denied", class: "permanent" },
};

/** Known row, else by range: 1xxx ok, 2xxx permanent, 3xxx/4xxx temporary (provider codes such as Skycore's 3510 "throughput exceeded"), anything else permanent. */
export function statusRow(code: number): StatusRow {
  const known = statusCodes[code];
  if (known) return known;
  const family = Math.floor(code / 1000);
  if (family === 1) return { name: "Success (unlisted code)", class: "ok" };
  if (family === 3 || family === 4) return { name: "Unlisted server/service error", class: "temporary" };
  return { name: "Unlisted error", class: "permanent" };
}

export interface MmStatusRow {
  outcome: CarrierReceipt["outcome"];
}

/** DeliveryReportReq MMStatus (keys lower-case; matched case-insensitively). */
const mmStatuses: Record<string, MmStatusRow> = {
  retrieved: { outcome: "delivered" },
  // The user forwarded it without retrieving; the MMSC did its job and nothing more will come.
  forwarded: { outcome: "delivered" },
  deferred: { outcome: "pending" },
  indeterminate: { outcome: "unknown" },
  expired: { outcome: "failed" },
  rejected: { outcome: "failed" },
  unrecognised: { outcome: "failed" },
  unrecognized: { outcome: "failed" },
  deliveryconditionnotmet: { outcome: "failed" },
  notsupported: { outcome: "failed" },
  unreachable: { outcome: "failed" },
};

/** An unlisted MMStatus is reported as unknown (final), as Mbuni maps it to Indeterminate. */
export function mmStatusOutcome(mmStatus: string): CarrierReceipt["outcome"] {
  return mmStatuses[mmStatus.trim().toLowerCase()]?.outcome ?? "unknown";
}

export function isFallbackMmStatus(mmStatus: string, fallback: readonly string[]): boolean {
  const s = mmStatus.trim().toLowerCase();
  return fallback.some((f) => f.toLowerCase() === s);
}

/** Codes we put into responses to the MMSC. */
export const answerCodes = {
  success: 1000,
  formatCorrupt: 2007,
  unsupportedOperation: 4003,
  validationError: 4004,
  serviceUnavailable: 4006,
} as const;

/**
 * What an HTTP status means when the body carries no MM7 status code. 401/403 (credentials) and
 * 3xx/404/405 (wrong URL) are configuration errors; 408/429/5xx are transient; other 4xx are our fault.
 */
export function httpStatusClass(status: number): StatusClass {
  if (status === 401 || status === 403 || status === 404 || status === 405 || status === 407) return "config";
  if (status >= 300 && status < 400) return "config";
  if (status === 408 || status === 429 || status >= 500) return "temporary";
  if (status >= 400) return "permanent";
  // 2xx without a readable SubmitRsp: the MMSC may or may not have taken it; a retry is the lesser evil.
  return "temporary";
}
