-- Routing across several carriers (as sqlite/migrations/003_routing.sql): the carrier a message may
-- already be with, and the carriers that refused it for good while its route let another try.
ALTER TABLE messages ADD COLUMN pinned_carrier TEXT;
ALTER TABLE messages ADD COLUMN refused_carriers TEXT NOT NULL DEFAULT '';
