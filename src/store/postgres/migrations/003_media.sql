-- Adapted media, hosted media pages and capability memory: the same tables as SQLite's migration 003,
-- shared by every node (an image adapted on one node is not adapted again on another).
CREATE TABLE adapted_media (
  source_hash  TEXT NOT NULL,
  profile      TEXT NOT NULL,
  content_type TEXT,
  bytes        BYTEA,
  width        INTEGER,
  height       INTEGER,
  unfit        TEXT,
  created_at   BIGINT NOT NULL,
  used_at      BIGINT NOT NULL,
  PRIMARY KEY (source_hash, profile)
);
CREATE INDEX adapted_media_used ON adapted_media (used_at);

CREATE TABLE media_links (
  token       TEXT PRIMARY KEY,
  message_id  TEXT NOT NULL UNIQUE,
  subject     TEXT NOT NULL,
  text        TEXT NOT NULL,
  media       TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  expires_at  BIGINT NOT NULL
);
CREATE INDEX media_links_expiry ON media_links (expires_at);

CREATE TABLE capability (
  number      TEXT PRIMARY KEY,
  reason      TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  until       BIGINT NOT NULL,
  hits        INTEGER NOT NULL DEFAULT 0
);

ALTER TABLE messages ADD COLUMN fallback_reason TEXT;
