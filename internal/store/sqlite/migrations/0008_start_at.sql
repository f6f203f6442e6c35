-- 0008_start_at: a campaign may be scheduled. start_at is when it starts
-- sending (Unix milliseconds; 0: at once); Claim hands out none of its
-- deliveries before then.
ALTER TABLE campaigns ADD COLUMN start_at INTEGER NOT NULL DEFAULT 0;
