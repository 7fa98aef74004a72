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
