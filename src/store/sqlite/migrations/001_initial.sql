-- Messages: one row per accepted request. `due_at` is when the next step is due (a submit while
-- accepted, the end of the receipt window while submitted; the claim time while submitting) and NULL once final, so the partial index
-- holds only the live queue however many finished messages the table keeps.
CREATE TABLE messages (
  id          TEXT PRIMARY KEY,
  account_id  TEXT NOT NULL,
  request_id  TEXT,
  channel     TEXT NOT NULL,
  fallback    INTEGER NOT NULL DEFAULT 0,
  state       TEXT NOT NULL,
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
CREATE INDEX messages_due ON messages(state, channel, due_at) WHERE due_at IS NOT NULL;

-- The exactly-once key: one row per (account, request_id), holding the answer to replay.
CREATE TABLE dedup (
  account_id  TEXT NOT NULL,
  request_id  TEXT NOT NULL,
  message_id  TEXT,
  status      INTEGER NOT NULL,
  response    TEXT NOT NULL,
  body_hash   TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (account_id, request_id)
) WITHOUT ROWID;
CREATE INDEX dedup_created ON dedup(created_at);

-- Carrier message ids → message; several per message for a multipart SMS, each with its own outcome.
CREATE TABLE carrier_ids (
  carrier     TEXT NOT NULL,
  carrier_id  TEXT NOT NULL,
  message_id  TEXT NOT NULL,
  part        INTEGER NOT NULL,
  outcome     TEXT,
  PRIMARY KEY (carrier, carrier_id)
) WITHOUT ROWID;
CREATE INDEX carrier_ids_message ON carrier_ids(message_id);

-- Receipts that arrived before the submit answer that names their id was stored.
CREATE TABLE early_receipts (
  seq         INTEGER PRIMARY KEY,
  carrier     TEXT NOT NULL,
  carrier_id  TEXT NOT NULL,
  receipt     TEXT NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE INDEX early_receipts_key ON early_receipts(carrier, carrier_id);

-- The outbox: webhook events, written in the transaction that causes them.
CREATE TABLE events (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id    TEXT NOT NULL UNIQUE,
  message_id  TEXT,
  account_id  TEXT NOT NULL,
  kind        TEXT NOT NULL,
  url         TEXT NOT NULL,
  body        TEXT NOT NULL,
  state       TEXT NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  due_at      INTEGER,
  last_error  TEXT
);
CREATE INDEX events_pending ON events(due_at) WHERE state = 'pending';
CREATE INDEX events_message ON events(message_id);
CREATE INDEX events_dead ON events(state) WHERE state = 'dead';
