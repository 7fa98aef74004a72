// The SQL of adapted media, hosted media pages and capability memory (migration 003), kept apart from
// the message tables as in the SQLite driver (sqlite/media.ts): none of it is part of a message's state
// machine. A memory is written with its fallback, in the transition (core.ts apply).
import type { AdaptedMedia, CapabilityEntry, MediaLink } from "../index.ts";
import type { MediaMethods } from "../parts.ts";
import { toCapability, toLink } from "../rows.ts";
import type { PostgresCore } from "./core.ts";

/** An adaptation's used_at is refreshed at most this often per node: a campaign's hits must not each be a write. */
const TOUCH_EVERY_MS = 3_600_000;

export class PostgresMedia implements MediaMethods {
  private readonly touched = new Map<string, number>();

  constructor(private readonly c: PostgresCore) {}

  async adaptedMedia(hash: string, profile: string): Promise<AdaptedMedia | null> {
    const c = this.c;
    const [r] = await c.read((sql) => sql`SELECT content_type, bytes, width, height, unfit FROM adapted_media WHERE source_hash = ${hash} AND profile = ${profile}`);
    if (!r) return null;
    const key = `${hash}@${profile}`;
    const now = c.now();
    if (now - (this.touched.get(key) ?? 0) > TOUCH_EVERY_MS) {
      this.touched.set(key, now);
      // Only keeps the entry from the purge; losing it to an outage costs nothing.
      c.read((sql) => sql`UPDATE adapted_media SET used_at = GREATEST(used_at, ${now}) WHERE source_hash = ${hash} AND profile = ${profile}`).catch(() => this.touched.delete(key));
    }
    if (r.unfit !== null) return { unfit: r.unfit as string };
    return { contentType: r.content_type as string, bytes: new Uint8Array(r.bytes as Buffer), width: r.width as number, height: r.height as number };
  }

  async putAdaptedMedia(hash: string, profile: string, m: AdaptedMedia): Promise<void> {
    const now = this.c.now();
    this.touched.set(`${hash}@${profile}`, now);
    const [type, bytes, width, height, unfit] = "unfit" in m ? [null, null, null, null, m.unfit] : [m.contentType, Buffer.from(m.bytes), m.width, m.height, null];
    await this.c.read(
      (sql) => sql`INSERT INTO adapted_media (source_hash, profile, content_type, bytes, width, height, unfit, created_at, used_at)
        VALUES (${hash}, ${profile}, ${type}, ${bytes}, ${width}, ${height}, ${unfit}, ${now}, ${now})
        ON CONFLICT (source_hash, profile) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, width = excluded.width,
          height = excluded.height, unfit = excluded.unfit, used_at = excluded.used_at`,
    );
  }

  async ensureMediaLink(link: Omit<MediaLink, "expiresAt">, ttlMs: number): Promise<MediaLink> {
    const now = this.c.now();
    return this.c.tx(async (tx) => {
      await tx`INSERT INTO media_links (token, message_id, subject, text, media, created_at, expires_at)
        VALUES (${link.token}, ${link.messageId}, ${link.subject}, ${link.text}, ${JSON.stringify(link.media)}, ${now}, ${now + ttlMs}) ON CONFLICT DO NOTHING`;
      const [r] = await tx`SELECT * FROM media_links WHERE message_id = ${link.messageId}`;
      return toLink(r!);
    });
  }

  async mediaLink(token: string): Promise<MediaLink | null> {
    const [r] = await this.c.read((sql) => sql`SELECT * FROM media_links WHERE token = ${token} AND expires_at > ${this.c.now()}`);
    return r ? toLink(r) : null;
  }

  async noMmsMemory(number: string): Promise<CapabilityEntry | null> {
    const [r] = await this.c.read((sql) => sql`UPDATE capability SET hits = hits + 1 WHERE number = ${number} AND until > ${this.c.now()} RETURNING *`);
    return r ? toCapability(r) : null;
  }

  async listNoMms(limit = 1000): Promise<CapabilityEntry[]> {
    return (await this.c.read((sql) => sql`SELECT * FROM capability WHERE until > ${this.c.now()} ORDER BY created_at DESC LIMIT ${limit}`)).map(toCapability);
  }

  async forgetNoMms(number: string): Promise<boolean> {
    return (await this.c.read((sql) => sql`DELETE FROM capability WHERE number = ${number}`)).count > 0;
  }

  purgeMedia(adaptedUnusedBefore: number): Promise<{ links: number; capability: number; adapted: number }> {
    const now = this.c.now();
    return this.c.tx(async (tx) => ({
      links: (await tx`DELETE FROM media_links WHERE expires_at <= ${now}`).count,
      capability: (await tx`DELETE FROM capability WHERE until <= ${now}`).count,
      adapted: (await tx`DELETE FROM adapted_media WHERE used_at < ${adaptedUnusedBefore}`).count,
    }));
  }
}
