// The SQL of adapted media, hosted media pages and capability memory (migration 003), kept apart from
// the message tables: none of it is part of a message's state machine. A memory is written with its
// fallback, in the store's transition (core.ts apply).
import type { Database, Statement } from "bun:sqlite";
import type { NoMmsMemory } from "../../domain/decisions.ts";
import type { AdaptedMedia, CapabilityEntry, MediaLink } from "../index.ts";
import type { GroupCommit } from "./db.ts";
import type { MediaMethods } from "../parts.ts";
import { toCapability, toLink } from "../rows.ts";

type Row = Record<string, string | number | Uint8Array | null>;

/** used_at is refreshed at most this often per entry: a campaign's million hits must not be a million writes. */
const TOUCH_EVERY_MS = 3_600_000;

export class SqliteMedia implements MediaMethods {
  private readonly s: Record<string, Statement>;
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly writer: GroupCommit,
    private readonly now: () => number,
  ) {
    const q = (sql: string) => db.prepare(sql);
    this.s = {
      adaptedGet: q("SELECT content_type, bytes, width, height, unfit FROM adapted_media WHERE source_hash = ? AND profile = ?"),
      adaptedPut: q(
        "INSERT OR REPLACE INTO adapted_media (source_hash, profile, content_type, bytes, width, height, unfit, created_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      adaptedTouch: q("UPDATE adapted_media SET used_at = ? WHERE source_hash = ? AND profile = ?"),
      linkInsert: q("INSERT OR IGNORE INTO media_links (token, message_id, subject, text, media, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
      linkOfMessage: q("SELECT * FROM media_links WHERE message_id = ?"),
      linkGet: q("SELECT * FROM media_links WHERE token = ?"),
      capabilityPut: q(
        "INSERT INTO capability (number, reason, created_at, until, hits) VALUES (?, ?, ?, ?, 0) ON CONFLICT (number) DO UPDATE SET reason = excluded.reason, until = excluded.until",
      ),
      capabilityGet: q("SELECT * FROM capability WHERE number = ? AND until > ?"),
      capabilityHit: q("UPDATE capability SET hits = hits + 1 WHERE number = ?"),
      capabilityList: q("SELECT * FROM capability WHERE until > ? ORDER BY created_at DESC LIMIT ?"),
      capabilityForget: q("DELETE FROM capability WHERE number = ?"),
    };
  }

  // ---- adapted media --------------------------------------------------------------------------

  async adaptedMedia(hash: string, profile: string): Promise<AdaptedMedia | null> {
    const r = this.s.adaptedGet!.get(hash, profile) as Row | null;
    if (!r) return null;
    const key = `${hash}@${profile}`;
    const now = this.now();
    if (now - (this.touched.get(key) ?? 0) > TOUCH_EVERY_MS) {
      this.touched.set(key, now);
      // Only keeps the entry from the purge; losing it to a storage hiccup costs nothing.
      this.writer.write(() => this.s.adaptedTouch!.run(now, hash, profile)).catch(() => this.touched.delete(key));
    }
    if (r.unfit !== null) return { unfit: r.unfit as string };
    return { contentType: r.content_type as string, bytes: r.bytes as Uint8Array, width: r.width as number, height: r.height as number };
  }

  putAdaptedMedia(hash: string, profile: string, row: AdaptedMedia): Promise<void> {
    const now = this.now();
    this.touched.set(`${hash}@${profile}`, now);
    return this.writer.write(() => {
      if ("unfit" in row) this.s.adaptedPut!.run(hash, profile, null, null, null, null, row.unfit, now, now);
      else this.s.adaptedPut!.run(hash, profile, row.contentType, row.bytes, row.width, row.height, null, now, now);
    });
  }

  // ---- hosted media pages ---------------------------------------------------------------------

  /** The message's link, created with `token` unless it has one already (a retried SMS keeps its link). */
  async ensureMediaLink(link: Omit<MediaLink, "expiresAt">, ttlMs: number): Promise<MediaLink> {
    const now = this.now();
    await this.writer.write(() =>
      this.s.linkInsert!.run(link.token, link.messageId, link.subject, link.text, JSON.stringify(link.media), now, now + ttlMs),
    );
    return toLink(this.s.linkOfMessage!.get(link.messageId) as Row);
  }

  /** null for an unknown or expired token. */
  async mediaLink(token: string): Promise<MediaLink | null> {
    const r = this.s.linkGet!.get(token) as Row | null;
    if (!r || (r.expires_at as number) <= this.now()) return null;
    return toLink(r);
  }

  // ---- capability memory ----------------------------------------------------------------------

  /** Inside the caller's write (the transaction that sends the message to its fallback). */
  rememberInWrite(m: NoMmsMemory): void {
    this.s.capabilityPut!.run(m.number, m.reason, this.now(), m.until);
  }

  async noMmsMemory(number: string): Promise<CapabilityEntry | null> {
    const r = this.s.capabilityGet!.get(number, this.now()) as Row | null;
    if (!r) return null;
    // A counter for the operator: a hit lost to a storage hiccup costs nothing.
    const counted = await this.writer.write(() => this.s.capabilityHit!.run(number).changes).catch(() => 0);
    return { ...toCapability(r), hits: (r.hits as number) + counted };
  }

  async listNoMms(limit = 1000): Promise<CapabilityEntry[]> {
    return (this.s.capabilityList!.all(this.now(), limit) as Row[]).map(toCapability);
  }

  forgetNoMms(number: string): Promise<boolean> {
    return this.writer.write(() => this.s.capabilityForget!.run(number).changes > 0);
  }

  // ---- housekeeping ---------------------------------------------------------------------------

  /** Expired pages and memories, and adaptations unused since `adaptedUnusedBefore`. */
  purgeMedia(adaptedUnusedBefore: number): Promise<{ links: number; capability: number; adapted: number }> {
    const now = this.now();
    return this.writer.write(() => ({
      links: this.db.prepare("DELETE FROM media_links WHERE expires_at <= ?").run(now).changes,
      capability: this.db.prepare("DELETE FROM capability WHERE until <= ?").run(now).changes,
      adapted: this.db.prepare("DELETE FROM adapted_media WHERE used_at < ?").run(adaptedUnusedBefore).changes,
    }));
  }
}

