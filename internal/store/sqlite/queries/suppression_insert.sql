-- suppression_insert: the first reason given for a key is kept.
INSERT INTO suppressions ("key", reason, created_at) VALUES (:key, :reason, :now)
ON CONFLICT ("key") DO NOTHING
