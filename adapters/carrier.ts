// The narrow waist between the pipeline and the carrier protocols. Adapters implement these
// interfaces and know nothing of Bloomreach; the pipeline knows nothing of MM7 or SMPP.

/** The logging an adapter gets: pino's Logger satisfies it; only these four methods are used. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What a carrier said about one submit attempt. */
export type SubmitResult =
  | {
      kind: "ok";
      /** Carrier ids to match receipts by, already normalised by the adapter. Several for a multipart SMS. */
      carrierMessageIds: string[];
    }
  | {
      kind: "temporary";
      code: string;
      message: string;
      retryAfterMs?: number;
      /**
       * The carrier may have taken the message anyway: no answer came after the request was on the
       * wire (a timeout, the link lost). Under the at-most-once policy the gateway does not resend it.
       */
      inDoubt?: boolean;
    }
  | {
      kind: "permanent";
      code: string;
      message: string;
      /** The handset or number cannot take MMS: the fallback SMS may be sent instead. */
      fallbackEligible: boolean;
    };

/** One media item, already fetched and checked by the pipeline. */
export interface MediaPart {
  contentType: string;
  bytes: Uint8Array;
  /** A large source's bytes are mapped from this file: libvips and ffmpeg read it instead of the bytes. */
  path?: string;
  /** Stable for the same bytes (e.g. a hash); lets an adapter reuse its encoded form across messages. */
  cacheKey: string;
  /** A file name for Content-Location, derived from the URL. */
  filename: string;
}

export interface MmsSubmit {
  messageId: string;
  /** The client's id for the request (none when it sent none): for log lines only, to find them by it. */
  requestId?: string | null;
  from: string;
  to: string;
  subject: string;
  text: string;
  media: MediaPart[];
}

export interface SmsSubmit {
  messageId: string;
  /** As in MmsSubmit: for log lines only. */
  requestId?: string | null;
  from: string;
  to: string;
  text: string;
}

/**
 * How a receipt's id relates to the submit answer's id (Kannel `msg-id-type`, Jasmin `dlr_msg_id_bases`):
 * the same base, or hex in the answer and decimal in the receipt, or the reverse.
 */
export type IdBase = "same" | "resp_hex_receipt_dec" | "resp_dec_receipt_hex";

/** One key a receipt's id may stand for, and the id base under which it does. */
export interface IdReading {
  key: string;
  base: IdBase;
}

/**
 * A delivery report from the carrier, for one carrier message id (one SMS part, or one MMS).
 * - delivered / failed: final for that id.
 * - unknown: the carrier says it cannot know (MM7 Indeterminate, SMPP UNKNOWN); final.
 * - pending: intermediate (MM7 Deferred, SMPP ENROUTE/ACCEPTD); no state change.
 */
export interface CarrierReceipt {
  carrier: string;
  carrierMessageId: string;
  outcome: "delivered" | "failed" | "unknown" | "pending";
  /** For a failed MMS: the handset cannot take MMS, so the fallback SMS should go out. */
  fallbackEligible?: boolean;
  code?: string;
  message?: string;
  /** Unix milliseconds of the carrier's event (the time the receipt states, else arrival). */
  timestamp: number;
  /**
   * Set when the carrier's id base is not configured: every key the id may stand for, the plain one
   * (= carrierMessageId) first. The pipeline tries them all until it has learnt the carrier's base.
   */
  readings?: IdReading[];
  /** The handset the message went to, as the receipt says: tells apart two messages whose ids read alike. */
  to?: string;
}

/** A mobile-originated message (MO SMS via deliver_sm, MO MMS via MM7 DeliverReq). */
export interface InboundMessage {
  carrier: string;
  channel: "sms" | "mms";
  carrierMessageId: string;
  from: string;
  to: string;
  subject?: string;
  text: string;
  media: { contentType: string; filename: string; base64: string }[];
  timestamp: number;
}

/**
 * A concatenated MO given up before all its parts came: it waited too long ("expired") or the
 * reassembly buffer's bounds pushed it out ("full"). `delivered`: its partial text still reached the
 * pipeline; otherwise it is lost (its parts were already acknowledged).
 */
export interface MoIncomplete {
  carrier: string;
  reason: "expired" | "full";
  delivered: boolean;
}

/**
 * How an adapter hands what it received to the pipeline. Each promise resolves once the item is
 * durably recorded and rejects when it could not be; the adapter acknowledges to the carrier only
 * after it resolves, so a refused acknowledgement makes the carrier send it again.
 */
export interface CarrierEvents {
  receipt(r: CarrierReceipt): Promise<void>;
  inbound(m: InboundMessage): Promise<void>;
  /** Counted, for operators: what the adapter could not hand on whole. */
  moIncomplete(d: MoIncomplete): void;
}

export interface CarrierHealth {
  name: string;
  /** up: bound / reachable; down: failing; alarm: a configuration problem (bad credentials, version). */
  /** standby: this bind is another node's (see BindLeases); not a problem. */
  state: "up" | "down" | "alarm" | "idle" | "standby";
  detail: string;
}

/**
 * A carrier's bind slots as a cluster limit: an SMSC allows so many binds per system_id, so with several
 * nodes each bind is leased before it opens (PostgreSQL); one node holds every slot for good (SQLite).
 */
export interface BindLeases {
  /** How often `hold` is called while the carrier runs. */
  readonly renewEveryMs: number;
  /**
   * Renews this node's slots among `limit`, takes free or expired ones up to its fair share and names
   * the ones above it, which the carrier closes and then gives back with `release`.
   */
  hold(limit: number): Promise<BindHold>;
  release(slots: number[]): Promise<void>;
}

export interface BindHold {
  /** Slots this node keeps bound. */
  mine: number[];
  /** Slots this node still holds but should close and release (another node is due a share). */
  surplus: number[];
  /** Each slot's holder, by slot (null = free), for the status page. */
  holders: (string | null)[];
  /** Slots held across the cluster, this node's included: the carrier's tps is split in proportion. */
  held: number;
  /** When this node's slots run out without renewal (another node may take them then); null = never. */
  until: number | null;
}

interface Carrier {
  readonly name: string;
  start(events: CarrierEvents): Promise<void>;
  /** Stops taking new submits, lets in-flight ones finish (or fail temporarily) within `deadlineMs` milliseconds from now. */
  stop(deadlineMs: number): Promise<void>;
  health(): CarrierHealth[];
  /**
   * Whether submits can go out, without health()'s text (asked per claimed message): "up" when a link
   * that submits is up, else "alarm" or "down" when one is, else "idle".
   */
  submitState(): CarrierHealth["state"];
  /**
   * Called once after start with the messages this carrier took but has not reported on yet. A real
   * carrier keeps its pending reports and resends them; the embedded sandbox dies with the process
   * and uses this to carry on where it stopped.
   */
  resume?(open: { carrierMessageId: string; to: string }[]): void;
  /** True while other nodes hold every bind of this carrier: its messages are theirs to claim. */
  standby?(): boolean;
}

export interface MmsCarrier extends Carrier {
  submit(m: MmsSubmit): Promise<SubmitResult>;
  /** The carrier's size limit, for adapting media to it before the submit; absent = no limit known. */
  readonly limits?: MmsLimits;
}

export interface MmsLimits {
  maxMessageBytes: number;
  /** The size the limit applies to (bytes after transfer decoding), for this message. */
  measure(m: MmsSubmit): number;
}

export interface SmsCarrier extends Carrier {
  submit(m: SmsSubmit): Promise<SubmitResult>;
}
