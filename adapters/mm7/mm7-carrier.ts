// The MM7 carrier: what the pipeline sees (MmsCarrier) plus the inbound endpoint handler.
import type { CarrierEvents, CarrierHealth, MmsCarrier, MmsSubmit, SubmitResult } from "../carrier.ts";
import { mmscEndpoint, postSubmit } from "./client.ts";
import { createInboundHandler } from "./inbound.ts";
import type { Logger } from "../carrier.ts";
import { PartCache } from "./part-cache.ts";
import { namespaceUri, resolveMm7Settings, type Mm7Settings } from "./settings.ts";
import { SubmitGate } from "./submit-gate.ts";
import { buildSubmitMessage, measureSubmitReq, minimumContentBytes } from "./submit-message.ts";
import { classifySubmitAnswer } from "./submit-response.ts";

export interface Mm7Deps {
  log: Logger;
  /** Unix milliseconds: timestamps in SubmitReq and receipts. */
  now: () => number;
  fetch?: typeof fetch;
}

export interface Mm7Carrier extends MmsCarrier {
  /** Handles a POST from the MMSC (DeliveryReportReq, DeliverReq, ReadReplyReq); never throws. */
  handleInbound(req: Request): Promise<Response>;
}

/** `settings` is merged over mm7Defaults and checked; throws on an unknown key or a bad value. */
export function createMm7Carrier(settings: Partial<Mm7Settings>, deps: Mm7Deps): Mm7Carrier {
  const s = resolveMm7Settings(settings as Record<string, unknown>);
  const ns = namespaceUri(s);
  const endpoint = mmscEndpoint(s);
  const fetchFn = deps.fetch ?? fetch;
  const cache = new PartCache(s.media_cache_bytes);
  const gate = new SubmitGate({ concurrency: s.concurrency, rate: s.rate, burst: s.rate_burst, queueLimit: s.queue_limit });
  const stopping = new AbortController();
  let events: CarrierEvents | undefined;
  let health: Omit<CarrierHealth, "name"> = { state: "idle", detail: "no submit yet" };

  /** The alarm stays until the MMSC gives an MM7 answer that is not a configuration error. */
  function noteHealth(next: Omit<CarrierHealth, "name">): void {
    if (health.state === "alarm" && next.state === "down") return;
    if (next.state === "alarm" && health.state !== "alarm") deps.log.error({ carrier: s.name, detail: next.detail }, "mm7 carrier alarm: configuration problem");
    health = next;
  }

  async function submitOnce(m: MmsSubmit): Promise<SubmitResult> {
    const message = buildSubmitMessage(s, ns, m, deps.now(), cache);
    if (message.submitReqBytes > s.max_message_bytes) return tooLarge(message.submitReqBytes);
    const outcome = await postSubmit(endpoint, message, s.timeout_ms, stopping.signal, fetchFn);
    if (outcome.kind === "timeout") {
      noteHealth({ state: "down", detail: `MMSC timeout: ${outcome.message}` });
      // The MMSC may have taken it; the pipeline decides whether to resend (research §5.1).
      return { kind: "temporary", code: "mm7:timeout", message: outcome.message, inDoubt: true };
    }
    if (outcome.kind === "aborted") return { kind: "temporary", code: "mm7:stopped", message: outcome.message, inDoubt: true };
    if (outcome.kind === "transport") {
      noteHealth({ state: "down", detail: `MMSC unreachable at ${endpoint.redactedUrl}: ${outcome.message}` });
      return { kind: "temporary", code: "mm7:transport", message: outcome.message };
    }
    if (outcome.kind === "broken") {
      noteHealth({ state: "down", detail: `MMSC connection broke at ${endpoint.redactedUrl}: ${outcome.message}` });
      return { kind: "temporary", code: "mm7:connection-lost", message: `${outcome.message}; the MMSC may have taken it`, inDoubt: true };
    }
    const answer = classifySubmitAnswer(s, outcome.answer, deps.now());
    const r = answer.result;
    if (answer.alarm) noteHealth({ state: "alarm", detail: answer.alarm });
    else if (r.kind === "temporary" && /^mm7:(http-|bad-response)/.test(r.code)) noteHealth({ state: "down", detail: r.message });
    else noteHealth({ state: "up", detail: `last answer ${r.kind === "ok" ? "accepted" : r.code}` });
    if (r.kind === "ok" && r.carrierMessageIds.length === 0) deps.log.warn({ carrier: s.name, messageId: m.messageId, requestId: m.requestId }, "mm7 SubmitRsp accepted without MessageID: reports cannot be matched");
    if (r.kind !== "ok") deps.log.warn({ carrier: s.name, messageId: m.messageId, requestId: m.requestId, kind: r.kind, code: r.code, detail: r.message }, "mm7 submit not accepted");
    return r;
  }

  function tooLarge(bytes: number): SubmitResult {
    // Our content, not the handset: the fallback SMS is not the answer to an oversized MMS.
    return { kind: "permanent", code: "mm7:size", message: `message is ${bytes} bytes, over max_message_bytes ${s.max_message_bytes}`, fallbackEligible: false };
  }

  return {
    name: s.name,

    async start(e: CarrierEvents): Promise<void> {
      events = e;
      if (!s.url) deps.log.warn({ carrier: s.name }, "mm7 carrier has no url: every submit will fail");
    },

    async stop(deadlineMs: number): Promise<void> {
      gate.stop();
      const deadline = new Promise<void>((r) => setTimeout(r, Math.max(0, deadlineMs)));
      await Promise.race([gate.idle(), deadline]);
      // Whatever is still in flight is aborted and answered temporary "mm7:stopped".
      stopping.abort();
      await gate.idle();
      health = { state: "idle", detail: "stopped" };
    },

    submitState: () => health.state,
    health(): CarrierHealth[] {
      return [{ name: s.name, ...health }];
    },

    async submit(m: MmsSubmit): Promise<SubmitResult> {
      if (minimumContentBytes(m) > s.max_message_bytes) return tooLarge(minimumContentBytes(m));
      const admission = await gate.acquire();
      if (admission === "stopped") return { kind: "temporary", code: "mm7:stopped", message: "carrier is stopping" };
      if (admission === "busy") return { kind: "temporary", code: "mm7:busy", message: `more than ${s.queue_limit} submits waiting`, retryAfterMs: 1000 };
      try {
        return await submitOnce(m);
      } catch (err) {
        deps.log.error({ carrier: s.name, messageId: m.messageId, requestId: m.requestId, err: String(err) }, "mm7 submit failed unexpectedly");
        return { kind: "temporary", code: "mm7:internal", message: String(err) };
      } finally {
        gate.release();
      }
    },

    limits: { maxMessageBytes: s.max_message_bytes, measure: (m) => measureSubmitReq(s, ns, m, deps.now()) },

    handleInbound: createInboundHandler(s, { log: deps.log, now: deps.now, events: () => events }),
  };
}
