-- due_now: deferred rows of the classes in the JSON array :classes (all when
-- it is empty) become due at :now — after the user fixed a fault on our side
-- (a blocked port, a wrong password), resume must not wait for the backoff.
UPDATE deliveries
SET next_at = max(:now, 1), -- 0 is for rows never claimed (0002_claims.sql)
	updated_at = :now
WHERE campaign_id = :campaign
	AND state = 'deferred'
	AND next_at > :now
	AND (json_array_length(:classes) = 0 OR class IN (SELECT value FROM json_each(:classes)))
