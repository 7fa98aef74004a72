// Error codes the gateway itself puts into failed events (carrier codes come from the adapters).
export const gatewayErrors = {
  validityExpired: { code: "gateway:validity_expired", message: "retries exhausted within the message validity" },
  inFlightUnknown: {
    code: "gateway:in_flight_unknown",
    message: "the gateway stopped while the submit was in flight; not resent (at-most-once policy)",
  },
  // Also used when the carrier's answer never came (timeout, link lost): the carrier may have the message.
  noReportInWindow: { code: "gateway:no_report", message: "no delivery report within the receipt window" },
  noFallbackText: { code: "gateway:no_fallback", message: "handset cannot take MMS and no fallback text was given" },
} as const;

export type GatewayError = { code: string; message: string };

/** Exponential backoff with full jitter, capped: the n-th retry (n ≥ 1) waits in [base·2^(n-1)/2, base·2^(n-1)]. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
