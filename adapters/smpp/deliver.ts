// What to do with a deliver_sm: a receipt goes to events.receipt, anything else is an MO for
// events.inbound (after reassembly when concatenated). The returned number is the deliver_sm_resp
// command_status: 0 once the pipeline has the item, ESME_RX_T_APPN when it refused, so the SMSC retries.

import type { CarrierEvents, CarrierReceipt } from "../carrier.ts";
import { decodeText, MoReassembly, splitUserData, type GiveUpReason, type Reassembled } from "./mo.ts";
import { idReadings, receiptKey } from "./message-id.ts";
import type { ShortMessageFields } from "./pdu.ts";
import { isReceipt, parseReceipt } from "./receipt.ts";
import type { Logger } from "../carrier.ts";
import type { SmppSettings } from "./settings.ts";
import { ESME_ROK, ESME_RX_T_APPN } from "./status.ts";

export interface DeliverContext {
  carrier: string;
  settings: SmppSettings;
  events: () => CarrierEvents | undefined;
  log: Logger;
  now: () => number;
  reassembly: MoReassembly;
}

export async function handleDeliver(sm: ShortMessageFields, ctx: DeliverContext): Promise<number> {
  const events = ctx.events();
  if (!events) return ESME_RX_T_APPN;
  return isReceipt(sm) ? handleReceipt(sm, events, ctx) : handleMo(sm, events, ctx);
}

async function handleReceipt(sm: ShortMessageFields, events: CarrierEvents, ctx: DeliverContext): Promise<number> {
  const r = parseReceipt(sm);
  if (!r.id) {
    // Asking for it again would bring the same unreadable receipt: acknowledge and leave a trace.
    ctx.log.warn({ carrier: ctx.carrier, text: Buffer.from(sm.shortMessage).toString("latin1").slice(0, 200) }, "smpp receipt without a message id; dropped");
    return ESME_ROK;
  }
  const details = [r.stat && `stat:${r.stat}`, r.err && `err:${r.err}`, r.networkError && `network_error_code:${r.networkError}`, `id:${r.id}`];
  const receipt: CarrierReceipt = {
    carrier: ctx.carrier,
    carrierMessageId: receiptKey(r.id, ctx.settings.receipt_id_base),
    outcome: r.outcome,
    timestamp: r.doneAt ?? ctx.now(),
    message: details.filter(Boolean).join(" "),
    // A receipt's source_addr is the handset the message went to (Appendix B).
    to: sm.sourceAddr || undefined,
  };
  if (ctx.settings.receipt_id_base === "learn") receipt.readings = idReadings(r.id);
  if (r.outcome === "failed" || r.outcome === "unknown") receipt.code = `smpp:${r.stat ?? "no-stat"}${r.err ? `:${r.err}` : ""}`;
  try {
    await events.receipt(receipt);
    return ESME_ROK;
  } catch (e) {
    ctx.log.warn({ carrier: ctx.carrier, carrierMessageId: receipt.carrierMessageId, err: String(e) }, "smpp receipt not recorded; SMSC will redeliver");
    return ESME_RX_T_APPN;
  }
}

async function handleMo(sm: ShortMessageFields, events: CarrierEvents, ctx: DeliverContext): Promise<number> {
  const part = splitUserData(sm);
  if (!part.concat) return deliverInbound(sm.sourceAddr, sm.destAddr, decodeText(sm.dataCoding, part.payload), events, ctx);
  const done = ctx.reassembly.add(sm.sourceAddr, sm.destAddr, sm.dataCoding, { ...part, concat: part.concat }, (evicted) =>
    void deliverLeftover(evicted, "full", events, ctx),
  );
  // Earlier parts are acknowledged at once: holding their deliver_sm_resp would stall the SMSC's window.
  if (!done) return ESME_ROK;
  const status = await deliverInbound(sm.sourceAddr, sm.destAddr, done.text, events, ctx);
  // On refusal the parts stay, so the SMSC's redelivery of this last part completes the message again.
  if (status === ESME_ROK) ctx.reassembly.release(done.key);
  else ctx.reassembly.refused(done.key);
  return status;
}

async function deliverInbound(from: string, to: string, text: string, events: CarrierEvents, ctx: DeliverContext): Promise<number> {
  try {
    await events.inbound({
      carrier: ctx.carrier,
      channel: "sms",
      // deliver_sm carries no id of its own; a random one never merges two identical MOs ("YES" twice).
      carrierMessageId: `mo-${crypto.randomUUID()}`,
      from,
      to,
      text,
      media: [],
      timestamp: ctx.now(),
    });
    return ESME_ROK;
  } catch (e) {
    ctx.log.warn({ carrier: ctx.carrier, from, err: String(e) }, "smpp MO not recorded; SMSC will redeliver");
    return ESME_RX_T_APPN;
  }
}

/**
 * A concatenated MO that left the buffer before the pipeline had it: better its text with a gap than
 * nothing. A complete one (the pipeline refused it earlier and the SMSC never redelivered) is simply
 * offered again.
 */
export async function deliverLeftover(r: Reassembled, reason: GiveUpReason, events: CarrierEvents, ctx: DeliverContext): Promise<void> {
  const [from = "", to = ""] = r.key.split("\u0000");
  if (!r.complete) ctx.log.warn({ carrier: ctx.carrier, from, reason, held: { messages: ctx.reassembly.size, bytes: ctx.reassembly.bytes } }, "smpp concatenated MO incomplete; delivering the parts that came");
  const status = await deliverInbound(from, to, r.text, events, ctx);
  if (status !== ESME_ROK) ctx.log.error({ carrier: ctx.carrier, from }, "smpp incomplete MO lost: the pipeline refused it and its parts were acknowledged");
  if (!r.complete) events.moIncomplete({ carrier: ctx.carrier, reason, delivered: status === ESME_ROK });
}
