-- The same tables as the SQLite store, shared by every node. Times are epoch milliseconds (BIGINT),
-- as in SQLite, so domain/ sees the same numbers from either engine.
CREATE TABLE messages (
  id          TEXT PRIMARY KEY,
  account_id  TEXT NOT NULL,
  request_id  TEXT,
  channel     TEXT NOT NULL CHECK (channel IN ('mms', 'sms')),
  fallback    BOOLEAN NOT NULL DEFAULT false,
  state       TEXT NOT NULL CHECK (state IN ('accepted', 'submitting', 'submitted', 'delivered', 'failed', 'sent')),
  attempts    INTEGER NOT NULL DEFAULT 0,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL,
  due_at      BIGINT,
  expires_at  BIGINT NOT NULL,
  carrier     TEXT,
  last_error  TEXT,
  history     TEXT NOT NULL,
  payload     TEXT NOT NULL,
  -- The node whose submit may be on the wire (state submitting), and until when its claim holds; it
  -- renews the lease while it lives, and another node applies the in-flight policy once it runs out.
  lease_node  TEXT,
  lease_until BIGINT,
  CHECK ((state = 'submitting') = (lease_node IS NOT NULL))
);
CREATE INDEX messages_due ON messages (state, channel, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX messages_lease ON messages (lease_until) WHERE state = 'submitting';
CREATE INDEX messages_request ON messages (request_id);

-- The exactly-once key across nodes: one row per (account, request_id), holding the answer to replay.
CREATE TABLE dedup (
  account_id  TEXT NOT NULL,
  request_id  TEXT NOT NULL,
  message_id  TEXT,
  status      INTEGER NOT NULL,
  response    TEXT NOT NULL,
  body_hash   TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (account_id, request_id)
);
CREATE INDEX dedup_created ON dedup (created_at);

CREATE TABLE carrier_ids (
  carrier     TEXT NOT NULL,
  carrier_id  TEXT NOT NULL,
  message_id  TEXT NOT NULL,
  part        INTEGER NOT NULL,
  outcome     TEXT CHECK (outcome IN ('delivered', 'failed', 'unknown', 'pending')),
  PRIMARY KEY (carrier, carrier_id)
);
CREATE INDEX carrier_ids_message ON carrier_ids (message_id);

-- Receipts no submitted message matched yet, shared: the submit answer may be stored by another node.
CREATE TABLE early_receipts (
  seq         BIGSERIAL PRIMARY KEY,
  carrier     TEXT NOT NULL,
  carrier_id  TEXT NOT NULL,
  receipt     TEXT NOT NULL,
  received_at BIGINT NOT NULL
);
CREATE INDEX early_receipts_key ON early_receipts (carrier, carrier_id);

-- The outbox. A node sending an event holds it by a lease, so two nodes never send it at once and a
-- message's next event waits until this one is settled.
CREATE TABLE events (
  seq         BIGSERIAL PRIMARY KEY,
  event_id    TEXT NOT NULL UNIQUE,
  message_id  TEXT,
  account_id  TEXT NOT NULL,
  kind        TEXT NOT NULL CHECK (kind IN ('delivered', 'failed', 'sent', 'inbound')),
  url         TEXT NOT NULL,
  body        TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts    INTEGER NOT NULL DEFAULT 0,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL,
  due_at      BIGINT,
  last_error  TEXT,
  lease_node  TEXT,
  lease_until BIGINT
);
CREATE INDEX events_pending ON events (due_at) WHERE state = 'pending';
CREATE INDEX events_message ON events (message_id, seq) WHERE state = 'pending';
CREATE INDEX events_of_message ON events (message_id);
CREATE INDEX events_dead ON events (state) WHERE state = 'dead';

-- Every node's heartbeat (status page, /metrics).
CREATE TABLE nodes (
  id          TEXT PRIMARY KEY,
  started_at  BIGINT NOT NULL,
  seen_at     BIGINT NOT NULL
);
