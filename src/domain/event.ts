// The delivery-report event Bloomreach receives (contract section 6). Field names are ours and stable.
// The schema is the one definition: the type below, and the webhook part of GET /openapi.json.
import { Type as T, type Static } from "@sinclair/typebox";
import type { InboundMessage } from "../../adapters/carrier.ts";
import type { Channel, MessagePayload, ReportStatus } from "./message.ts";

export const DeliveryEventSchema = T.Object(
  {
    event_id: T.String({ description: "Unique per event: a consumer can deduplicate on it (delivery is at-least-once)." }),
    message_id: T.String({ description: "The id POST /mms or POST /sms answered with." }),
    request_id: T.Union([T.String(), T.Null()], { description: "The request_id as received; null if the request had none." }),
    custom_data: T.Union([T.String(), T.Null()], { description: "The request's custom_data, byte for byte." }),
    status: T.Union([T.Literal("delivered"), T.Literal("failed"), T.Literal("sent")], {
      description: "delivered: the handset has it. failed: final failure. sent: the carrier took it but cannot or did not report more.",
    }),
    channel: T.Union([T.Literal("mms"), T.Literal("sms")], { description: "sms when the fallback SMS is what the event is about." }),
    fallback: T.Boolean({ description: "True when the MMS could not be delivered and the fallback SMS was sent instead." }),
    fallback_reason: T.Optional(
      T.String({ description: "With fallback: why the MMS became an SMS (\"code: message\": the carrier's refusal, media that could not be made to fit, or capability:no_mms for a number remembered as unable to take MMS)." }),
    ),
    timestamp: T.Number({ description: "Unix seconds (with milliseconds) of the carrier's event." }),
    to: T.String({ description: "The recipient, 00 followed by E.164 digits." }),
    from: T.String({ description: "The sender as sent to the carrier." }),
    carrier_message_id: T.Union([T.String(), T.Null()], { description: "The carrier's id for the message, when it gave one." }),
    error: T.Optional(
      T.Object(
        { code: T.String({ description: "mm7:<status>, smpp:<status> or a gateway code." }), message: T.String() },
        { description: "On failed events only.", additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export type DeliveryEvent = Static<typeof DeliveryEventSchema> & { status: ReportStatus; channel: Channel };

export function deliveryEvent(
  m: { id: string; requestId: string | null; channel: Channel; fallback: boolean; fallbackReason?: string | null; payload: MessagePayload },
  status: ReportStatus,
  eventId: string,
  timestampMs: number,
  carrierMessageId: string | null,
  error?: { code: string; message: string },
): DeliveryEvent {
  const e: DeliveryEvent = {
    event_id: eventId,
    message_id: m.id,
    request_id: m.requestId,
    custom_data: m.payload.custom_data,
    status,
    channel: m.channel,
    fallback: m.fallback,
    timestamp: Math.round(timestampMs) / 1000,
    to: `00${m.payload.to}`,
    from: m.payload.from,
    carrier_message_id: carrierMessageId,
  };
  if (m.fallback && m.fallbackReason) e.fallback_reason = m.fallbackReason;
  // The contract has `error` on failed events only (a `sent` after the receipt window carries none).
  if (error && status === "failed") e.error = error;
  return e;
}

/** The event an MO message becomes for the account's inbound_url (contract section 7). */
export function inboundEvent(eventId: string, m: InboundMessage) {
  return {
    event_id: eventId,
    type: "inbound",
    channel: m.channel,
    from: m.from,
    to: m.to,
    subject: m.subject ?? null,
    text: m.text,
    media: m.media.map((x) => ({ content_type: x.contentType, filename: x.filename, base64: x.base64 })),
    timestamp: m.timestamp / 1000,
    carrier_message_id: m.carrierMessageId,
  };
}

/** Time-sortable ids: the prefix, 9 base-32 digits of milliseconds, then 12 random ones. */
const alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
export function newId(prefix: "msg" | "evt", nowMs: number, random: () => number = Math.random): string {
  let t = "";
  let n = Math.floor(nowMs);
  for (let i = 0; i < 9; i++) {
    t = alphabet[n % 32] + t;
    n = Math.floor(n / 32);
  }
  let r = "";
  for (let i = 0; i < 12; i++) r += alphabet[Math.floor(random() * 32)];
  return `${prefix}_${t}${r}`;
}

/** The smallest id created at or after `nowMs`: ids below it are older. */
export function idFloor(prefix: "msg" | "evt", nowMs: number): string {
  return newId(prefix, nowMs, () => 0);
}
