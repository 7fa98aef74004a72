// The embedded carrier: behaves like a real one (asynchronous reports, failures, retries) so the whole
// journey can be tried and tested with nothing else installed. The recipient's last two digits choose
// the scenario (config.md, "The sandbox carriers").
import type { CarrierEvents, CarrierHealth, CarrierReceipt, MmsCarrier, MmsLimits, MmsSubmit, SmsCarrier, SmsSubmit, SubmitResult } from "../carrier.ts";
import { mm7Defaults, namespaceUri } from "../mm7/settings.ts";
import { measureSubmitReq } from "../mm7/submit-message.ts";

export interface SandboxOptions {
  name: string;
  channel: "mms" | "sms";
  reportDelayMs: number;
  now: () => number;
  /** MMS: refuse messages over this many bytes, measured as an MM7 MMSC would (0 = no limit). */
  maxMessageBytes?: number;
}

export function createSandboxCarrier(o: SandboxOptions): MmsCarrier & SmsCarrier {
  let events: CarrierEvents | null = null;
  let seq = 0;
  let stopped = false;
  /** Messages whose first submit already failed (scenario 01); a restart forgets them, like a flaky carrier. */
  const failedOnce = new Set<string>();
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const report = (r: CarrierReceipt, attempt = 0) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (stopped || !events) return;
      // Like a real SMSC/MMSC: a report that was not acknowledged is sent again later.
      events.receipt({ ...r, timestamp: o.now() }).catch(() => report(r, attempt + 1));
    }, o.reportDelayMs * (attempt + 1));
    timers.add(t);
  };

  // The sandbox MMSC takes the SubmitReq an MM7 MMSC with default settings would get, and its limit.
  const limits: MmsLimits | undefined =
    o.channel === "mms" && o.maxMessageBytes
      ? { maxMessageBytes: o.maxMessageBytes, measure: (m) => measureSubmitReq(mm7Defaults, namespaceUri(mm7Defaults), m, o.now()) }
      : undefined;

  const submit = async (m: MmsSubmit | SmsSubmit): Promise<SubmitResult> => {
    if (stopped) return { kind: "temporary", code: "sandbox:stopped", message: "the sandbox carrier is stopping" };
    if (limits && "media" in m) {
      const size = limits.measure(m);
      if (size > limits.maxMessageBytes) {
        return { kind: "permanent", code: "sandbox:size", message: `message is ${size} bytes, over max_message_bytes ${limits.maxMessageBytes}`, fallbackEligible: false };
      }
    }
    const scenario = m.to.slice(-2);
    if (scenario === "01" && !failedOnce.has(m.messageId)) {
      failedOnce.add(m.messageId);
      return { kind: "temporary", code: "sandbox:busy", message: "first attempt refused (sandbox scenario 01)", retryAfterMs: 100 };
    }
    if (scenario === "02") return { kind: "permanent", code: "sandbox:rejected", message: "refused for good (sandbox scenario 02)", fallbackEligible: false };
    const id = `sbx-${o.name}-${o.now().toString(36)}-${(++seq).toString(36)}`;
    reportFor(id, m.to);
    return { kind: "ok", carrierMessageIds: [id] };
  };

  /** The report follows from the recipient alone, so it can be re-derived after a restart. */
  const reportFor = (id: string, to: string) => {
    const scenario = to.slice(-2);
    const base = { carrier: o.name, carrierMessageId: id, timestamp: 0 };
    if (scenario === "03" && o.channel === "mms") {
      report({ ...base, outcome: "failed", fallbackEligible: true, code: "sandbox:no_mms", message: "handset cannot take MMS (sandbox scenario 03)" });
    } else if (scenario === "04") {
      report({ ...base, outcome: "failed", code: "sandbox:expired", message: "expired before the handset was reached (sandbox scenario 04)" });
    } else {
      report({ ...base, outcome: "delivered" });
    }
  };

  return {
    name: o.name,
    async start(e: CarrierEvents) {
      events = e;
    },
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
    resume(open) {
      for (const m of open) reportFor(m.carrierMessageId, m.to);
    },
    submitState: () => (stopped ? "idle" : "up"),
    health(): CarrierHealth[] {
      return [{ name: o.name, state: stopped ? "idle" : "up", detail: "sandbox" }];
    },
    limits,
    submit,
  };
}
