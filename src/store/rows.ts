// Row → value mappers that read the same columns in both engines (the drivers differ only in how they fetch).
import type { CapabilityEntry, MediaLink } from "./index.ts";

type Row = Record<string, unknown>;

export function toLink(r: Row): MediaLink {
  return {
    token: r.token as string,
    messageId: r.message_id as string,
    subject: r.subject as string,
    text: r.text as string,
    media: JSON.parse(r.media as string),
    expiresAt: r.expires_at as number,
  };
}

export function toCapability(r: Row): CapabilityEntry {
  return { number: r.number as string, reason: r.reason as string, createdAt: r.created_at as number, until: r.until as number, hits: r.hits as number };
}
