// The store as the rest of the gateway sees it: one interface, whatever engine is underneath
// (sqlite/ for one node, postgres/ for several). Drivers apply the decisions of domain/ in a
// transaction and decide nothing themselves; nothing outside store/ knows which driver it talks to.
import type { BindHold, CarrierReceipt, InboundMessage, SubmitResult } from "../../adapters/carrier.ts";
import type { DeliveryPolicy, Outcome } from "../domain/decisions.ts";
import type { Channel, MessagePayload, ReportStatus, StoredMessage } from "../domain/message.ts";

/** The database cannot take writes (disk full, read-only, unreachable server…): answer 503, retry later. */
export class StorageUnavailable extends Error {
  constructor(override readonly cause: unknown) {
    super(`storage unavailable: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

export interface AcceptInput {
  accountId: string;
  requestId: string | null;
  channel: Channel;
  payload: MessagePayload;
  bodyHash: string;
  expiresAt: number;
}

export interface StoredResponse {
  status: number;
  body: string;
  replay: boolean;
  /** The replayed request's body differed from the original (logged and counted by the caller). */
  bodyDiffers: boolean;
  messageId: string | null;
}

export interface StoreOptions extends DeliveryPolicy {
  now: () => number;
  /** PostgreSQL: how long a node's claims, events and bind slots hold without renewal (renewed every third). */
  leaseMs?: number;
  random?: () => number;
  /**
   * Told after each commit what it finished: a final state or a fallback. Every path that ends a
   * message (submit answer, receipt, validity, receipt window, recovery) goes through here, so the
   * counters fed from it are complete.
   */
  onOutcome?: (o: Outcome) => void;
  /**
   * Committed data may not be on disk (a failed fsync): nothing this process reads back can be trusted
   * to be durable, and only a restart recovers from what the disk really holds.
   */
  onDurabilityLost?: (e: unknown) => void;
}

/** Where a webhook batch goes: one batch per key at a time. */
export interface WebhookKey {
  accountId: string;
  url: string;
}

export interface PendingEvent {
  seq: number;
  eventId: string;
  messageId: string | null;
  accountId: string;
  url: string;
  body: string;
  attempts: number;
  createdAt: number;
}

/** `unmatched`: no submitted message has the id (yet), or two do alike; the receipt is held. */
export type ReceiptResult = "applied" | "duplicate" | "unmatched" | "ignored";

/** A held receipt, for the admin API: the keys it waits under and what it says. */
export interface UnmatchedReceipt {
  carrier: string;
  carrierIds: string[];
  receivedAt: number;
  receipt: CarrierReceipt;
}

export interface RetryFilter {
  since?: number;
  errorCode?: string;
  accountId?: string;
  limit?: number;
}

export type Row = Record<string, unknown>;

/** An adaptation kept per (content hash, profile): the result, or why nothing fits that profile. */
export type AdaptedMedia = { contentType: string; bytes: Uint8Array; width: number; height: number } | { unfit: string };

/** The hosted page of a message that fell back to SMS, found by its unguessable token. */
export interface MediaLink {
  token: string;
  messageId: string;
  subject: string;
  text: string;
  /** Its media: rows of the adapted media, by (content hash, profile). */
  media: { hash: string; profile: string }[];
  expiresAt: number;
}

/** A number remembered as unable to take MMS (capability memory). */
export interface CapabilityEntry {
  number: string;
  reason: string;
  createdAt: number;
  until: number;
  hits: number;
}

/** A gateway node sharing the store; `live`: its heartbeat is younger than a claim lease. */
export interface NodeInfo {
  id: string;
  startedAt: number;
  seenAt: number;
  live: boolean;
}

/** Work another node made due here: messages on a channel, or webhook events. */
export type WorkKind = Channel | "events";

export interface Store {
  /**
   * True when a write queued after another sees it and commits with it or later (one writer, in order: SQLite),
   * so a claim queued right behind an accept can share its commit; false when writes run on several connections.
   */
  readonly writesInOrder: boolean;
  // ---- intake
  /**
   * Stores a new message and its dedup key in one transaction, or returns the stored answer for a
   * request_id already seen (also when the first copy is in the same commit). Resolves once durable.
   */
  accept(input: AcceptInput): Promise<StoredResponse>;
  /** Remembers a permanent refusal (400/403) for a request_id so a retry gets the same answer. */
  rememberRefusal(accountId: string, requestId: string, status: number, body: string, bodyHash: string): Promise<StoredResponse>;
  /** A request_id's stored answer, if any, once it is durable. */
  lookupRequest(accountId: string, requestId: string, bodyHash: string): Promise<StoredResponse | null>;
  /** Messages waiting for a carrier (the queue the high-water mark is about); costs nothing per call. */
  queuedCount(): number;

  // ---- dispatching
  /** Claims up to `limit` due messages: `submitting` before any is sent; expired ones fail instead. */
  /**
   * `assign` picks each claimed message's carrier (the router); recorded with the claim. null: no
   * carrier of this node may take it now (another node holds its binds): left for that node.
   */
  claimDue(channel: Channel, limit: number, assign?: (m: StoredMessage) => string | null): Promise<StoredMessage[]>;
  /** The earliest time anything on `channel` is due in `state`, or null. */
  nextDue(state: "accepted" | "submitted", channel: Channel): Promise<number | null>;
  /** Applies what the carrier said about a submit (and any receipt that arrived before it). */
  /** `routing`: keep a retry on this carrier (pin), or send a permanent refusal to the route's next one (elsewhere). */
  recordSubmit(
    claimed: StoredMessage,
    carrier: string,
    result: SubmitResult,
    routing?: { pin: boolean; elsewhere: boolean },
  ): Promise<{ fallback: boolean; final: ReportStatus | null }>;
  /** Messages whose submit was in flight when their node stopped: the in-flight policy decides. */
  recoverInFlight(): Promise<number>;
  /** Carrier ids still waiting for their report, with the recipient (for a carrier's resume). */
  openCarrierIds(carrier: string): Promise<{ carrierMessageId: string; to: string }[]>;
  /** Submitted messages whose receipt window ended: final `sent`. */
  expireReceiptWindows(limit: number): Promise<number>;
  /** Drops held receipts older than `holdMs` and returns them, so the caller can log each. */
  dropStaleEarlyReceipts(holdMs: number): Promise<{ carrier: string; carrier_id: string }[]>;

  // ---- carrier binds (a cluster limit; adapters/carrier.ts BindLeases)
  /**
   * Renews this node's bind slots of `carrier` (of `limit`), takes free or expired ones up to its fair
   * share, and names those above it. One node (SQLite) holds every slot for good.
   */
  holdBinds(carrier: string, limit: number): Promise<BindHold>;
  /** Gives back slots whose binds this node closed. */
  releaseBinds(carrier: string, slots: number[]): Promise<void>;

  // ---- what carriers send back
  /**
   * A carrier receipt: idempotent. One whose id matches no submitted message, or two alike, is held
   * under each key its id may stand for, until a submit answer names one of them.
   */
  applyReceipt(r: CarrierReceipt): Promise<ReceiptResult>;
  /** Held receipts, oldest first: each once, with every key it waits under. */
  listUnmatchedReceipts(limit?: number): Promise<UnmatchedReceipt[]>;
  recordInbound(accountId: string, url: string, m: InboundMessage): Promise<string>;

  // ---- outbox
  /**
   * Pending events due by `now`, oldest due first, each the oldest pending event of its message; durable.
   * None of the `busy` (account, URL) keys: their batch is in flight, the next waits for its answer.
   */
  dueEvents(now: number, limit: number, busy?: WebhookKey[]): Promise<PendingEvent[]>;
  /** When the next pending event not yet due becomes due, or null. */
  nextEventDue(now: number): Promise<number | null>;
  eventsDelivered(seqs: number[]): Promise<void>;
  eventsRetry(seqs: number[], dueAt: number, error: string): Promise<void>;
  eventsDead(seqs: number[], error: string): Promise<void>;

  // ---- admin and housekeeping
  messageOfCarrierId(carrier: string, carrierMessageId: string): Promise<{ messageId: string; requestId: string | null } | null>;
  getMessage(id: string): Promise<StoredMessage | null>;
  /** Everything an operator needs about one message, by message id or request_id. */
  describe(idOrRequestId: string): Promise<Record<string, unknown> | null>;
  listDeadEvents(limit?: number): Promise<Row[]>;
  /** Puts dead-lettered events back in the outbox (all, or the given sequence numbers). */
  requeueDead(seqs: number[] | "all"): Promise<number>;
  /** Operator retry of failed messages (domain: decideOperatorRetry). */
  retryFailed(filter: RetryFilter, validityMs: number): Promise<number>;
  /** Deletes dedup keys past the window and finished messages and delivered events past retention. */
  purge(dedupBefore: number, finishedBefore: number, chunk?: number): Promise<{ dedup: number; messages: number; events: number }>;
  queueStats(): Promise<{ state: string; channel: string; count: number; oldest: number | null }[]>;
  eventStats(): Promise<{ state: string; count: number; oldest: number | null }[]>;
  /** The nodes sharing this store (SQLite: this process; none for a tool). */
  nodes(): Promise<NodeInfo[]>;

  /**
   * Calls `listener` when another node made work due (a hint: every loop also polls). On one node
   * the loops are woken directly and this never calls.
   */
  watch(listener: (kind: WorkKind) => void): void;

  // ---- media (adapted media, hosted pages, capability memory)
  /** A remembered adaptation; a read marks it used (at most hourly), which keeps it from the purge. */
  adaptedMedia(hash: string, profile: string): Promise<AdaptedMedia | null>;
  putAdaptedMedia(hash: string, profile: string, media: AdaptedMedia): Promise<void>;
  /** The message's page, created with `link.token` unless it has one already (a retried SMS keeps its link). */
  ensureMediaLink(link: Omit<MediaLink, "expiresAt">, ttlMs: number): Promise<MediaLink>;
  /** null for an unknown or expired token. */
  mediaLink(token: string): Promise<MediaLink | null>;
  /** The unexpired memory of a number (normal form), counting a hit; null when none. */
  noMmsMemory(number: string): Promise<CapabilityEntry | null>;
  listNoMms(limit?: number): Promise<CapabilityEntry[]>;
  forgetNoMms(number: string): Promise<boolean>;
  /** Expired pages and memories, and adaptations unused since `adaptedUnusedBefore`. */
  purgeMedia(adaptedUnusedBefore: number): Promise<{ links: number; capability: number; adapted: number }>;

  // ---- health
  /** Resolves once everything committed so far is durable: what is told to the outside waits for it. */
  whenDurable(): Promise<void>;
  /** False after a failed write, true again after the next durable write that changed data. */
  healthy(): boolean;
  /** The last storage error, for the status page. */
  lastError(): string | null;
  /** Flushes and closes. `checkpoint: false` for a short-lived admin command beside a running gateway. */
  close(o?: { checkpoint?: boolean }): Promise<void>;
}
