// The operator's first check of an SMSC: each bind the gateway would open, bound and unbound once.
// No submit_sm is sent; a receipt or MO that arrives meanwhile is answered with a temporary error, so
// the SMSC keeps it for the gateway's real binds instead of counting it delivered to the probe.
import type { Logger } from "../carrier.ts";
import type { ProbeResult } from "../carrier-probe.ts";
import { SmppSession, type BindKind } from "./session.ts";
import type { SmppSettings } from "./settings.ts";
import { ESME_RX_T_APPN } from "./status.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export async function probeSmsc(s: SmppSettings, now: () => number = Date.now): Promise<ProbeResult> {
  const kinds: BindKind[] = s.bind_mode === "transceiver" ? ["transceiver"] : ["transmitter", "receiver"];
  const bound: string[] = [];
  for (const kind of kinds) {
    const session = new SmppSession(`probe:${kind}`, kind, s, { deliver: async () => ESME_RX_T_APPN }, quiet, now);
    await session.start();
    const health = session.health();
    const why = session.lastFailure;
    await session.stop(now() + s.unbind_timeout_ms);
    if (health.state === "alarm") return { verdict: "failed", detail: `${kind} bind as "${s.system_id}": ${why}: check system_id and password` };
    if (health.state !== "up") return { verdict: "failed", detail: `${kind} bind to ${s.host}:${s.port}: ${why}` };
    bound.push(kind);
  }
  return { verdict: "ok", detail: `bound as ${bound.join(" and ")} ("${s.system_id}") and unbound` };
}
