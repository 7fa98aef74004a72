// The SMPP carrier: a set of binds behind the SmsCarrier interface. Submits go round-robin over the
// bound transmitters; receipts and MO may arrive on any bind, since SMSCs route them to whichever
// RX/TRX bind of the system_id they like, and all of them feed the same callbacks.

import type { CarrierEvents, CarrierHealth, SmsCarrier, SmsSubmit, SubmitResult } from "../carrier.ts";
import { deliverLeftover, handleDeliver, type DeliverContext } from "./deliver.ts";
import { respKey } from "./message-id.ts";
import { MoReassembly } from "./mo.ts";
import type { ShortMessageFields } from "./pdu.ts";
import { TokenBucket } from "../shared/token-bucket.ts";
import type { Logger } from "../carrier.ts";
import { SmppSession, type PartGroup, type PartOutcome, type SessionCounters } from "./session.ts";
import { resolveSettings, type SmppSettings } from "./settings.ts";
import { classifySubmitStatus, statusCode, statusName } from "./status.ts";
import { planSubmit } from "./submit.ts";

export interface SmppCarrierDeps {
  log: Logger;
  now: () => number;
}

export interface SmppCarrier extends SmsCarrier {
  /** Per-bind counters, for /metrics and tests. */
  counters(): { session: string; counters: SessionCounters }[];
}

/** stop(deadlineMs): small values are a duration from now, epoch-sized ones an absolute deadline. */
const EPOCH_MS_THRESHOLD = 1e12;

export function createSmppCarrier(name: string, settings: Partial<SmppSettings>, deps: SmppCarrierDeps): SmppCarrier {
  const s = resolveSettings(settings);
  const log = deps.log;
  let events: CarrierEvents | undefined;
  let stopped = false;
  let concatRef = Math.floor(Math.random() * 0x10000);
  let next = 0;
  // Counts submit_sm PDUs, not messages (carriers throttle per PDU). Holds a tenth of a second's worth,
  // so a burst after idling stays small for a carrier that counts per sliding second.
  const bucket = new TokenBucket(s.tps, Math.max(1, s.tps / 10), deps.now);
  const reassembly = new MoReassembly({ timeoutMs: s.mo_reassembly_timeout_ms, maxMessages: s.mo_reassembly_max, maxBytes: s.mo_reassembly_max_bytes }, deps.now);
  const ctx: DeliverContext = { carrier: name, settings: s, events: () => events, log, now: deps.now, reassembly };
  const hooks = { deliver: (sm: ShortMessageFields) => handleDeliver(sm, ctx) };

  const sessions: SmppSession[] = [];
  for (let i = 0; i < s.binds; i++) {
    if (s.bind_mode === "transceiver") sessions.push(new SmppSession(`${name}:trx:${i}`, "transceiver", s, hooks, log, deps.now));
    else {
      sessions.push(new SmppSession(`${name}:tx:${i}`, "transmitter", s, hooks, log, deps.now));
      sessions.push(new SmppSession(`${name}:rx:${i}`, "receiver", s, hooks, log, deps.now));
    }
  }
  const transmitters = sessions.filter((x) => x.kind !== "receiver");
  let moSweep: ReturnType<typeof setInterval> | undefined;

  /** Next bound transmitter in turn, preferring one not paused by ESME_RTHROTTLED. */
  function pickSession(): SmppSession | undefined {
    let fallback: SmppSession | undefined;
    for (let i = 0; i < transmitters.length; i++) {
      const x = transmitters[(next + i) % transmitters.length]!;
      if (!x.canSubmit) continue;
      if (!x.paused) {
        next = (next + i + 1) % transmitters.length;
        return x;
      }
      fallback ??= x;
    }
    return fallback;
  }

  async function submit(m: SmsSubmit): Promise<SubmitResult> {
    if (stopped || !events) return { kind: "temporary", code: "smpp:stopped", message: "SMPP carrier is not running" };
    concatRef = (concatRef + 1) & 0xffff;
    const plan = planSubmit(m, s, concatRef);
    if (plan.kind === "refused") return { kind: "permanent", code: plan.code, message: plan.message, fallbackEligible: false };
    const session = pickSession();
    if (!session) {
      return { kind: "temporary", code: "smpp:not-bound", message: "no bound SMPP transmitter", retryAfterMs: s.reconnect_min_ms };
    }
    // All parts on one bind, in order; once a part fails the rest are not sent.
    const outcomes: Promise<PartOutcome>[] = [];
    const group: PartGroup = { failed: false };
    for (const part of plan.parts) {
      const wait = bucket.take();
      if (wait) await wait;
      if (group.failed || stopped) break;
      outcomes.push(session.submit(part, group));
    }
    const results = await Promise.all(outcomes);
    const result = summarise(results, plan.parts.length);
    if (result.kind !== "ok") log.debug({ carrier: name, messageId: m.messageId, requestId: m.requestId, session: session.label, result }, "smpp submit not accepted");
    return result;
  }

  /**
   * One result for all parts. All accepted → ok with one key per part. Any part refused for good →
   * permanent, even if earlier parts were accepted: the handset could never show the whole text, and
   * resending would repeat the refusal. Otherwise (throttled, temporary status, timeout, link down,
   * parts not sent) → temporary, in doubt only when a part left and no answer came (timeout, link
   * lost after the write); the retry sends every part again under a new reference, so the
   * recipient may also hold orphan parts of this attempt, which handsets drop; a partial text would be worse.
   */
  function summarise(results: PartOutcome[], total: number): SubmitResult {
    if (results.length === total && results.every((r) => r.kind === "ok")) {
      return { kind: "ok", carrierMessageIds: results.map((r) => respKey(r.kind === "ok" ? r.messageId : "", s.receipt_id_base)) };
    }
    const where = (i: number) => (total > 1 ? ` (part ${i + 1} of ${total})` : "");
    let temporary: SubmitResult | undefined;
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      if (r.kind !== "refused") continue;
      const cls = classifySubmitStatus(r.status, s.temporary_status_codes);
      const message = `${statusName(r.status)}${where(i)}`;
      if (cls === "permanent") return { kind: "permanent", code: statusCode(r.status), message, fallbackEligible: false };
      if (cls === "throttled") temporary = { kind: "temporary", code: statusCode(r.status), message, retryAfterMs: s.throttle_pause_ms };
      else temporary ??= { kind: "temporary", code: statusCode(r.status), message };
    }
    if (temporary) return temporary;
    const timedOut = results.findIndex((r) => r.kind === "timeout");
    if (timedOut >= 0) {
      return { kind: "temporary", code: "smpp:timeout", message: `no submit_sm_resp within ${s.response_timeout_ms} ms${where(timedOut)}; the SMSC may have accepted it`, inDoubt: true };
    }
    // A part was written and the link went before its answer: the SMSC may have it.
    const lost = results.findIndex((r) => r.kind === "link-down");
    if (lost >= 0) {
      const message = `SMPP link ${stopped ? "closed by stop" : "dropped"} before the SMSC answered${where(lost)}`;
      return stopped
        ? { kind: "temporary", code: "smpp:stopped", message, inDoubt: true }
        : { kind: "temporary", code: "smpp:link-down", message, retryAfterMs: s.reconnect_min_ms, inDoubt: true };
    }
    // Every unanswered part stayed with us: the SMSC has none of them, so a resend is safe.
    if (stopped) return { kind: "temporary", code: "smpp:stopped", message: "SMPP carrier stopping; not sent" };
    return { kind: "temporary", code: "smpp:not-bound", message: "SMPP link down; not sent", retryAfterMs: s.reconnect_min_ms };
  }

  return {
    name,
    async start(ev: CarrierEvents): Promise<void> {
      events = ev;
      stopped = false;
      const every = Math.min(30_000, Math.max(100, Math.floor(s.mo_reassembly_timeout_ms / 4)));
      moSweep = setInterval(() => {
        for (const r of reassembly.expire()) if (events) void deliverLeftover(r, "expired", events, ctx);
      }, every);
      await Promise.all(sessions.map((x) => x.start()));
      log.info({ carrier: name, binds: sessions.map((x) => x.health()) }, "smpp carrier started");
    },
    async stop(deadlineMs: number): Promise<void> {
      stopped = true;
      bucket.releaseAll();
      const deadlineAt = deadlineMs > EPOCH_MS_THRESHOLD ? deadlineMs : deps.now() + deadlineMs;
      await Promise.all(sessions.map((x) => x.stop(deadlineAt)));
      clearInterval(moSweep);
    },
    health(): CarrierHealth[] {
      return sessions.map((x) => x.health());
    },
    submit,
    counters() {
      return sessions.map((x) => ({ session: x.label, counters: { ...x.counters } }));
    },
  };
}
