// The SMPP carrier: a set of binds behind the SmsCarrier interface. Submits go round-robin over the
// bound transmitters; receipts and MO may arrive on any bind, since SMSCs route them to whichever
// RX/TRX bind of the system_id they like, and all of them feed the same callbacks. With several nodes
// each bind is a leased slot (BindLeases): this node opens only the slots it holds, and its tps is its
// share of the carrier's.

import type { BindHold, BindLeases, CarrierEvents, CarrierHealth, SmsCarrier, SmsSubmit, SubmitResult } from "../carrier.ts";
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
  /** The cluster's bind slots; absent: every bind is this process's (one node, a tool). */
  binds?: BindLeases;
}

export interface SmppCarrier extends SmsCarrier {
  /** Per-bind counters, for /metrics and tests. */
  counters(): { session: string; counters: SessionCounters }[];
  /** The bind slots this node holds and its part of the carrier's tps. */
  share(): { slots: number[]; tps: number };
}

/** Every slot, for good: one node's binds, as before leases. */
function allSlots(limit: number): BindLeases {
  const all = Array.from({ length: limit }, (_, i) => i);
  return { renewEveryMs: 0, hold: async () => ({ mine: all, surplus: [], holders: all.map(() => null), held: limit, until: null }), release: async () => {} };
}

/** A node's part of the carrier's tps: in proportion to the binds it holds among all held (0 = unlimited). */
export function tpsShare(tps: number, mine: number, held: number): number {
  return tps === 0 || held === 0 ? tps : (tps * mine) / held;
}

/** A tenth of a second's worth, so a burst after idling stays small for a carrier that counts per sliding second. */
const burstOf = (perSecond: number) => Math.max(1, perSecond / 10);

/** stop(deadlineMs): small values are a duration from now, epoch-sized ones an absolute deadline. */
const EPOCH_MS_THRESHOLD = 1e12;

export function createSmppCarrier(name: string, settings: Partial<SmppSettings>, deps: SmppCarrierDeps): SmppCarrier {
  const s = resolveSettings(settings);
  const log = deps.log;
  let events: CarrierEvents | undefined;
  let stopped = false;
  let concatRef = Math.floor(Math.random() * 0x10000);
  let next = 0;
  // Counts submit_sm PDUs, not messages (carriers throttle per PDU).
  const bucket = new TokenBucket(s.tps, burstOf(s.tps), deps.now);
  const reassembly = new MoReassembly({ timeoutMs: s.mo_reassembly_timeout_ms, maxMessages: s.mo_reassembly_max, maxBytes: s.mo_reassembly_max_bytes }, deps.now);
  const ctx: DeliverContext = { carrier: name, settings: s, events: () => events, log, now: deps.now, reassembly };
  const hooks = { deliver: (sm: ShortMessageFields) => handleDeliver(sm, ctx) };

  const leases = deps.binds ?? allSlots(s.binds);
  /** The sessions of each slot this node holds (a TRX, or a TX and an RX). */
  const slots = new Map<number, SmppSession[]>();
  let sessions: SmppSession[] = [];
  let transmitters: SmppSession[] = [];
  let holders: (string | null)[] = [];
  let leaseUntil: number | null = null;
  let renewTimer: ReturnType<typeof setInterval> | undefined;
  let fenceTimer: ReturnType<typeof setTimeout> | undefined;
  let renewing: Promise<void> = Promise.resolve();
  let holding = false;
  let moSweep: ReturnType<typeof setInterval> | undefined;

  function setSlots(): void {
    sessions = [...slots.keys()].sort((a, b) => a - b).flatMap((k) => slots.get(k)!);
    transmitters = sessions.filter((x) => x.kind !== "receiver");
  }

  /** Opens the binds of a slot; resolves once each has made its first attempt. */
  function open(slot: number): Promise<void> {
    const made =
      s.bind_mode === "transceiver"
        ? [new SmppSession(`${name}:trx:${slot}`, "transceiver", s, hooks, log, deps.now)]
        : [new SmppSession(`${name}:tx:${slot}`, "transmitter", s, hooks, log, deps.now), new SmppSession(`${name}:rx:${slot}`, "receiver", s, hooks, log, deps.now)];
    slots.set(slot, made);
    setSlots();
    return Promise.all(made.map((x) => x.start())).then(() => {});
  }

  /** Slots being unbound, and their unbinding: not reopened until it ends; stop waits for it. */
  const closing = new Map<number, Promise<void>>();

  /** Unbinds a slot's sessions (in-flight submits get until `deadlineAt`), then releases it if asked. */
  function close(slot: number, deadlineAt: number, release: boolean): Promise<void> {
    const sessionsOfSlot = slots.get(slot);
    if (!sessionsOfSlot) return closing.get(slot) ?? Promise.resolve();
    slots.delete(slot);
    setSlots();
    const done = Promise.all(sessionsOfSlot.map((x) => x.stop(deadlineAt)))
      .then(() => (release ? leases.release([slot]) : undefined))
      .catch((e) => log.warn({ carrier: name, slot, err: String(e) }, "smpp bind lease not released; it runs out"))
      .finally(() => closing.delete(slot));
    closing.set(slot, done);
    return done;
  }

  /**
   * Opens the slots this node now holds and closes the others: a surplus slot is released once its
   * binds are closed; a slot lost to another node (our lease ran out) is closed at once. Resolves when
   * the new binds made their first attempt; closing goes on behind, so renewals keep their pace.
   */
  async function follow(h: BindHold): Promise<void> {
    holders = h.holders;
    leaseUntil = h.until;
    armFence();
    const share = tpsShare(s.tps, h.mine.length, h.held);
    bucket.setRate(share, burstOf(share));
    const gone = [...slots.keys()].filter((slot) => !h.mine.includes(slot));
    const lost = gone.filter((slot) => !h.surplus.includes(slot));
    if (lost.length) log.warn({ carrier: name, slots: lost }, "smpp bind lease lost to another node; closing those binds");
    for (const slot of lost) void close(slot, deps.now(), false);
    // Surplus slots: above this node's share, released once closed; one never opened here (past a
    // lowered limit) at once. A slot still closing is left to that closing.
    for (const slot of h.surplus) {
      if (slots.has(slot)) {
        log.info({ carrier: name, slot }, "smpp bind above this node's share; closing and releasing it");
        void close(slot, deps.now() + leases.renewEveryMs, true);
      } else if (!closing.has(slot)) void leases.release([slot]).catch((e) => log.warn({ carrier: name, slot, err: String(e) }, "smpp bind lease not released; it runs out"));
    }
    await Promise.all(h.mine.filter((slot) => !slots.has(slot) && !closing.has(slot)).map(open));
  }

  /**
   * Without a renewal our slots run out at leaseUntil and another node may bind them: close ours one
   * renewal before, so the SMSC never sees both. Checked on the timer, not after a renewal that may hang.
   */
  function fence(why: string): void {
    if (leaseUntil === null || slots.size === 0 || deps.now() < leaseUntil - leases.renewEveryMs) return;
    log.error({ carrier: name, why }, "smpp bind leases not renewed in time; closing this node's binds");
    // In-flight submits get half the margin: the unbind must reach the SMSC before the lease ends.
    const deadlineAt = leaseUntil - leases.renewEveryMs / 2;
    for (const slot of [...slots.keys()]) void close(slot, deadlineAt, false);
  }

  /**
   * The fence runs when its time comes, not on the next renewal tick: a lease is stamped a little after
   * its tick (the store's clock, after the lock), so that tick's check two renewals on comes just too
   * early, and the one after just about when the lease ends.
   */
  function armFence(): void {
    clearTimeout(fenceTimer);
    if (leaseUntil === null || stopped) return;
    const wait = leaseUntil - leases.renewEveryMs - deps.now();
    if (wait <= 0) fence("renewal overdue");
    else fenceTimer = setTimeout(armFence, wait);
  }

  /** One renewal at a time: a slow one is not queued behind. */
  function renew(): void {
    fence("renewal overdue");
    if (holding || stopped) return;
    holding = true;
    renewing = (async () => {
      try {
        const h = await leases.hold(s.binds);
        if (!stopped) void follow(h);
      } catch (e) {
        log.warn({ carrier: name, err: String(e) }, "smpp bind leases could not be renewed; retrying");
        fence(String(e));
      } finally {
        holding = false;
      }
    })();
  }

  /** The sessions closed by stop: their health says "stopped". */
  let stoppedSessions: SmppSession[] = [];

  function health(): CarrierHealth[] {
    if (stopped) return stoppedSessions.map((x) => x.health());
    const mine = sessions.map((x) => x.health());
    const others = holders.flatMap((holder, slot): CarrierHealth[] =>
      slots.has(slot) ? [] : [{ name: `${name}:bind:${slot}`, state: "standby", detail: holder ? `held by node ${holder}` : "free; not held by this node" }],
    );
    return [...mine, ...others];
  }

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
      await follow(await leases.hold(s.binds));
      if (leaseUntil !== null) renewTimer = setInterval(renew, leases.renewEveryMs);
      log.info({ carrier: name, binds: health() }, "smpp carrier started");
    },
    async stop(deadlineMs: number): Promise<void> {
      stopped = true;
      clearInterval(renewTimer);
      clearTimeout(fenceTimer);
      bucket.releaseAll();
      const deadlineAt = deadlineMs > EPOCH_MS_THRESHOLD ? deadlineMs : deps.now() + deadlineMs;
      await renewing;
      stoppedSessions = sessions;
      // Released once unbound, so another node may bind them now rather than after the lease runs out.
      await Promise.all([...[...slots.keys()].map((slot) => close(slot, deadlineAt, leaseUntil !== null)), ...closing.values()]);
      clearInterval(moSweep);
    },
    submitState(): CarrierHealth["state"] {
      // A receiver bind says nothing about whether submits can go out; one link up is enough.
      let worst: CarrierHealth["state"] = "idle";
      for (const x of transmitters) {
        const st = x.linkState();
        if (st === "up") return "up";
        if (st === "alarm" || (st === "down" && worst !== "alarm")) worst = st;
      }
      return worst;
    },
    health,
    standby(): boolean {
      return slots.size === 0 && holders.length > 0 && !stopped;
    },
    submit,
    counters() {
      return sessions.map((x) => ({ session: x.label, counters: { ...x.counters } }));
    },
    share() {
      return { slots: [...slots.keys()].sort((a, b) => a - b), tps: bucket.rate };
    },
  };
}
