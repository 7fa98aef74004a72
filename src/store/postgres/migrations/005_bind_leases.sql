-- SMPP binds as a cluster limit: one row per carrier bind slot, held by at most one node under a lease
-- it renews; a slot whose lease ran out is free for another node. `bind_wanters` counts the nodes that
-- want a carrier's binds (each holds a fair share of them).
CREATE TABLE bind_leases (
  carrier TEXT NOT NULL,
  slot INTEGER NOT NULL CHECK (slot >= 0),
  node TEXT,
  lease_until BIGINT,
  CHECK ((node IS NULL) = (lease_until IS NULL)),
  PRIMARY KEY (carrier, slot)
);

CREATE TABLE bind_wanters (
  carrier TEXT NOT NULL,
  node TEXT NOT NULL,
  seen_at BIGINT NOT NULL,
  PRIMARY KEY (carrier, node)
);
