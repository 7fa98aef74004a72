-- One webhook batch per (account, URL) at a time across the cluster: a node skips a key while another
-- node holds a live lease on any of its events. This index finds those leases.
CREATE INDEX events_leased_key ON events (account_id, url) WHERE state = 'pending' AND lease_node IS NOT NULL;
