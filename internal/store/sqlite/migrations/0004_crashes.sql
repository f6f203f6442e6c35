-- 0004_crashes: how many times in a row a delivery's lease was released
-- while it was being sent (the process crashed or was killed), so that a
-- recipient that crashes every run is given up on (store.CrashLimit)
-- instead of stopping the list at every start. Recording an attempt
-- resets it.
ALTER TABLE deliveries ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;

-- Claim takes a due row released by a crash alone, before anything else;
-- this index finds the few such rows without walking every due row.
CREATE INDEX deliveries_suspect ON deliveries (campaign_id, next_at)
	WHERE state IN ('pending', 'deferred') AND crashes > 0;
