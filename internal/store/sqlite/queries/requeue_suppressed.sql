-- requeue_suppressed: a failed row that a retry would send again but whose
-- address or domain is suppressed now becomes suppressed; its last outcome
-- (class, reply) is kept.
UPDATE deliveries
SET state = 'suppressed',
	updated_at = :now
WHERE campaign_id = :campaign
	AND state = 'failed'
	AND (json_array_length(:classes) = 0 OR class IN (SELECT value FROM json_each(:classes)))
	AND ("key" IN (SELECT "key" FROM suppressions)
		OR '@' || domain IN (SELECT "key" FROM suppressions))
