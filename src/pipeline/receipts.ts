// What carriers send back (receipts, MO) → the store, one transaction each; the adapter acknowledges
// to the carrier only after the promise resolves, so nothing acknowledged is ever lost.
import type { Logger } from "pino";
import type { CarrierEvents, CarrierReceipt, InboundMessage, MoIncomplete } from "../../adapters/carrier.ts";
import type { AccountConfig } from "../config.ts";
import { inboundOwner } from "../domain/route.ts";
import type { Metrics } from "../observe/metrics.ts";
import type { Store } from "../store/index.ts";

export interface ReceiptDeps {
  store: Store;
  /** The accounts now (SIGHUP replaces them); read once per MO. */
  accounts: () => readonly AccountConfig[];
  log: Logger;
  metrics: Metrics;
  /** A receipt or MO wrote an event to send; `mayFallBack`: a failed receipt that may have made a fallback SMS due. */
  onChange: (mayFallBack: boolean) => void;
}

export function carrierEvents(d: ReceiptDeps): CarrierEvents {
  // MO goes to the account whose inbound_numbers own the number it was sent to; a number nobody owns
  // goes to the first account with an inbound_url (one Bloomreach project per gateway is common).
  return {
    async receipt(r: CarrierReceipt) {
      // An SMSC that reports at once sends the receipt in the same read as the answer to its submit, and
      // the receipt would reach the store first: held, read back and applied again by the submit answer
      // (twice the statements). One turn of the event loop lets that answer queue its write first, so
      // both go in one commit and the receipt simply matches.
      await new Promise((resolve) => setImmediate(resolve));
      const result = await d.store.applyReceipt(r);
      d.metrics.receipts.inc({ carrier: r.carrier, outcome: r.outcome, result });
      const log = { carrier: r.carrier, carrierId: r.carrierMessageId, outcome: r.outcome, code: r.code };
      if (result === "unmatched") d.log.info({ ...log, to: r.to }, "receipt matches no submitted message (or two alike); held until a submit answer names it (GET /admin/receipts/unmatched)");
      else if (d.log.isLevelEnabled("debug")) d.log.debug({ ...(await d.store.messageOfCarrierId(r.carrier, r.carrierMessageId)), ...log, result }, "receipt");
      // Only a failed receipt can send a message to its fallback: waking the SMS lane for the others would
      // be an empty claim (a write transaction) per receipt.
      if (result === "applied") d.onChange(r.outcome === "failed");
    },
    async inbound(m: InboundMessage) {
      d.metrics.inbound.inc({ channel: m.channel });
      const withUrl = d.accounts().filter((a) => a.enabled && a.inbound_url !== "");
      const owner = inboundOwner(withUrl, m.to);
      if (!owner) d.metrics.inboundUnowned.inc({ channel: m.channel });
      const inboundAccount = owner ?? withUrl[0];
      if (!inboundAccount) {
        d.log.warn({ carrier: m.carrier, from: m.from, to: m.to, channel: m.channel, text: m.text }, "MO message received but no account has an inbound_url; logged only");
        return;
      }
      const eventId = await d.store.recordInbound(inboundAccount.id, inboundAccount.inbound_url, m);
      d.log.info({ carrier: m.carrier, eventId, channel: m.channel, account: inboundAccount.id, owned: owner !== null }, "MO message queued for the inbound URL");
      d.onChange(false);
    },
    moIncomplete(x: MoIncomplete) {
      d.metrics.moIncomplete.inc({ carrier: x.carrier, reason: x.reason, result: x.delivered ? "delivered" : "lost" });
    },
  };
}
