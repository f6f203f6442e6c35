-- 0003_suppressions: what the suppression list keeps about each entry
-- besides its reason: where it came from (a bounce, a manual entry, an
-- imported file), the campaign of a bounce and the remote server's reply.
-- The key is a canonical address key, or "@" and an A-label domain for a
-- whole domain.
ALTER TABLE suppressions ADD COLUMN source   TEXT    NOT NULL DEFAULT '';
ALTER TABLE suppressions ADD COLUMN campaign TEXT    NOT NULL DEFAULT '';
ALTER TABLE suppressions ADD COLUMN code     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE suppressions ADD COLUMN enhanced TEXT    NOT NULL DEFAULT '';
ALTER TABLE suppressions ADD COLUMN text     TEXT    NOT NULL DEFAULT '';
