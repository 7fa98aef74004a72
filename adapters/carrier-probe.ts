// What `mms-gateway probe` learns from one carrier without sending it a message.

/**
 * ok: connected and authenticated. unverified: reachable, but the carrier offers no call that proves
 * the credentials. failed: unreachable, or the credentials or endpoint were refused.
 */
export interface ProbeResult {
  verdict: "ok" | "unverified" | "failed";
  detail: string;
}
