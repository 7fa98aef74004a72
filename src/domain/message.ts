// Message states and the only legal ways between them. The store applies a transition only as a
// compare-and-set on the state named here, so a late or repeated carrier event can never move a
// message backwards or out of a final state.

export const messageStates = ["accepted", "submitting", "submitted", "delivered", "failed", "sent"] as const;
export type MessageState = (typeof messageStates)[number];
export type Channel = "mms" | "sms";

/**
 * accepted   waiting for its (next) submit; `due_at` says when. The fallback SMS re-enters here.
 * submitting claimed by the dispatcher: a submit may be on the wire right now.
 * submitted  the carrier took it; waiting for its report until the receipt window ends.
 * delivered, failed, sent: final. `sent` = the carrier cannot tell us more.
 */
const legal: Record<MessageState, readonly MessageState[]> = {
  accepted: ["submitting", "failed"],
  submitting: ["submitted", "accepted", "failed"],
  submitted: ["delivered", "failed", "sent", "accepted"],
  delivered: [],
  failed: [],
  sent: [],
};

/**
 * What an operator may do beyond the automatic transitions (`retry-failed` after fixing a cause). Kept
 * apart so no automatic path can ever reopen a final state.
 */
const byOperator: Partial<Record<MessageState, readonly MessageState[]>> = {
  failed: ["accepted"],
};

export function isFinal(s: MessageState): boolean {
  return legal[s].length === 0;
}

export class IllegalTransition extends Error {
  constructor(
    readonly from: MessageState,
    readonly to: MessageState,
    readonly messageId: string,
  ) {
    super(`illegal transition ${from} → ${to} for ${messageId}`);
  }
}

export function assertTransition(from: MessageState, to: MessageState, messageId: string, by: "automatic" | "operator" = "automatic"): void {
  const allowed = by === "operator" ? (byOperator[from] ?? []) : legal[from];
  if (!allowed.includes(to)) throw new IllegalTransition(from, to, messageId);
}

/** What Bloomreach is told in a delivery report. */
export type ReportStatus = "delivered" | "failed" | "sent";

/** The stored, normalised request: everything the pipeline needs after the 200. */
export interface MessagePayload {
  from: string;
  to: string;
  subject: string;
  text: string;
  fallback_text: string;
  media: { url: string; content_type?: string }[];
  custom_data: string | null;
  callback_url: string;
  metadata: unknown;
}

export interface StoredMessage {
  id: string;
  accountId: string;
  requestId: string | null;
  channel: Channel;
  fallback: boolean;
  state: MessageState;
  attempts: number;
  createdAt: number;
  expiresAt: number;
  payload: MessagePayload;
  /** The carrier it was last claimed for (null before its first claim). */
  carrier: string | null;
  /** Only this carrier may have it: it may already hold it, or the route does not let it move. */
  pinned: string | null;
  /** Carriers that refused it for good while its route let the next one try. */
  refused: string[];
  /** Why the MMS went to its fallback SMS ("code: message"); null while it has not. */
  fallbackReason?: string | null;
}
