// The delivery-report event Bloomreach receives (contract section 6). Field names are ours and stable.
import type { Channel, MessagePayload, ReportStatus } from "./message.ts";

export interface DeliveryEvent {
  event_id: string;
  message_id: string;
  request_id: string | null;
  custom_data: string | null;
  status: ReportStatus;
  channel: Channel;
  fallback: boolean;
  timestamp: number;
  to: string;
  from: string;
  carrier_message_id: string | null;
  error?: { code: string; message: string };
}

export function deliveryEvent(
  m: { id: string; requestId: string | null; channel: Channel; fallback: boolean; payload: MessagePayload },
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
  // The contract has `error` on failed events only (a `sent` after the receipt window carries none).
  if (error && status === "failed") e.error = error;
  return e;
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
