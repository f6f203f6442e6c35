-- 0002_claims: first attempts are leased by id range, one claims row per
-- Claim, instead of one rewritten deliveries row per recipient (the
-- per-row UPDATE was the largest single cost of a message).
--
-- A delivery with state 'pending' and next_at = 0 has never been claimed
-- ("fresh"; the import writes next_at = 0 and no later write ever does).
-- Fresh rows are claimed in id order, so every fresh row with an id up to
-- the campaign's highest claims.last_id is inside exactly one claims row:
-- it is in flight (state "sending", attempt 1) under that row's owner and
-- lease. Recording, refunding or releasing it gives it next_at > 0.
CREATE TABLE claims (
	id          INTEGER PRIMARY KEY,
	campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
	owner       TEXT    NOT NULL,
	lease_until INTEGER NOT NULL,
	first_id    INTEGER NOT NULL,
	last_id     INTEGER NOT NULL
) STRICT;

CREATE INDEX claims_range ON claims (campaign_id, last_id);
