-- Media adapted to a carrier profile, once per (content hash, profile) and shared by every message.
-- `unfit` instead of bytes: nothing fits that profile, remembered as well so a campaign tries once.
CREATE TABLE adapted_media (
  source_hash  TEXT NOT NULL,
  profile      TEXT NOT NULL,
  content_type TEXT,
  bytes        BLOB,
  width        INTEGER,
  height       INTEGER,
  unfit        TEXT,
  created_at   INTEGER NOT NULL,
  used_at      INTEGER NOT NULL,
  UNIQUE (source_hash, profile)
);
CREATE INDEX adapted_media_used ON adapted_media(used_at);

-- The hosted page of a message that fell back to SMS: one per message, found by an unguessable token.
-- `media` is a JSON list of {hash, profile} in adapted_media (the copy adapted for the web).
CREATE TABLE media_links (
  token       TEXT PRIMARY KEY,
  message_id  TEXT NOT NULL UNIQUE,
  subject     TEXT NOT NULL,
  text        TEXT NOT NULL,
  media       TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
);
CREATE INDEX media_links_expiry ON media_links(expires_at);

-- Numbers that cannot take MMS (in one normal form: digits, country code first), until `until`.
CREATE TABLE capability (
  number      TEXT PRIMARY KEY,
  reason      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  until       INTEGER NOT NULL,
  hits        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Why a message left MMS for the SMS fallback, for its events.
ALTER TABLE messages ADD COLUMN fallback_reason TEXT;
