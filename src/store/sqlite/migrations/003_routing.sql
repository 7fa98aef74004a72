-- Routing across several carriers: `carrier` now names the carrier a message is claimed for (set at
-- each claim). A message that may already be with a carrier is pinned to it; carriers that refused it
-- for good, when its route let another try, are listed so it does not go back to them.
ALTER TABLE messages ADD COLUMN pinned_carrier TEXT;
ALTER TABLE messages ADD COLUMN refused_carriers TEXT NOT NULL DEFAULT '';
