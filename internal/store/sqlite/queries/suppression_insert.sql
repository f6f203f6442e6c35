-- suppression_insert: the first entry for a key is kept.
INSERT INTO suppressions ("key", reason, source, campaign, code, enhanced, text, created_at)
VALUES (:key, :reason, :source, :campaign, :code, :enhanced, :text, :at)
ON CONFLICT ("key") DO NOTHING
