-- requeue: failed rows of the classes in the JSON array :classes (all when it
-- is empty) go back to pending, due at :now. Rows whose address or domain
-- has since been suppressed are not (requeue_suppressed.sql). attempts is
-- kept (it only ever grows: the fence).
UPDATE deliveries
SET state = 'pending',
	next_at = max(:now, 1), -- 0 is for rows never claimed (0002_claims.sql)
	crashes = 0, -- a resend after the cause was fixed starts a new count
	updated_at = :now
WHERE campaign_id = :campaign
	AND state = 'failed'
	AND (json_array_length(:classes) = 0 OR class IN (SELECT value FROM json_each(:classes)))
	AND "key" NOT IN (SELECT "key" FROM suppressions)
	AND '@' || domain NOT IN (SELECT "key" FROM suppressions)
