-- State columns accept only what domain/ knows (SQLite adds a CHECK only by rebuilding the table).
CREATE TABLE messages_checked (
  id          TEXT PRIMARY KEY,
  account_id  TEXT NOT NULL,
  request_id  TEXT,
  channel     TEXT NOT NULL CHECK (channel IN ('mms', 'sms')),
  fallback    INTEGER NOT NULL DEFAULT 0 CHECK (fallback IN (0, 1)),
  state       TEXT NOT NULL CHECK (state IN ('accepted', 'submitting', 'submitted', 'delivered', 'failed', 'sent')),
  attempts    INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  due_at      INTEGER,
  expires_at  INTEGER NOT NULL,
  carrier     TEXT,
  last_error  TEXT,
  history     TEXT NOT NULL,
  payload     TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO messages_checked SELECT id, account_id, request_id, channel, fallback, state, attempts, created_at, updated_at, due_at, expires_at, carrier, last_error, history, payload FROM messages;
DROP TABLE messages;
ALTER TABLE messages_checked RENAME TO messages;
CREATE INDEX messages_due ON messages(state, channel, due_at) WHERE due_at IS NOT NULL;

CREATE TABLE carrier_ids_checked (
  carrier     TEXT NOT NULL,
  carrier_id  TEXT NOT NULL,
  message_id  TEXT NOT NULL,
  part        INTEGER NOT NULL,
  outcome     TEXT CHECK (outcome IN ('delivered', 'failed', 'unknown', 'pending')),
  PRIMARY KEY (carrier, carrier_id)
) WITHOUT ROWID;
INSERT INTO carrier_ids_checked SELECT carrier, carrier_id, message_id, part, outcome FROM carrier_ids;
DROP TABLE carrier_ids;
ALTER TABLE carrier_ids_checked RENAME TO carrier_ids;
CREATE INDEX carrier_ids_message ON carrier_ids(message_id);

CREATE TABLE events_checked (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id    TEXT NOT NULL UNIQUE,
  message_id  TEXT,
  account_id  TEXT NOT NULL,
  kind        TEXT NOT NULL CHECK (kind IN ('delivered', 'failed', 'sent', 'inbound')),
  url         TEXT NOT NULL,
  body        TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts    INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  due_at      INTEGER,
  last_error  TEXT
);
INSERT INTO events_checked SELECT seq, event_id, message_id, account_id, kind, url, body, state, attempts, created_at, updated_at, due_at, last_error FROM events;
DROP TABLE events;
ALTER TABLE events_checked RENAME TO events;
CREATE INDEX events_pending ON events(due_at) WHERE state = 'pending';
CREATE INDEX events_message ON events(message_id);
CREATE INDEX events_dead ON events(state) WHERE state = 'dead';
