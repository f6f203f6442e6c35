-- claim_suspect: the first due row that was released by a crash
-- (crashes > 0), leased on its own: Claim returns it alone so that, if it
-- crashes the process again, no other row is counted with it. Columns as
-- claim.sql.
UPDATE deliveries
SET state = 'sending',
	attempts = attempts + 1,
	lease_owner = :owner,
	lease_until = :lease_until,
	updated_at = :now
WHERE id = (
	SELECT id FROM deliveries
	WHERE campaign_id = :campaign
		AND state IN ('pending', 'deferred')
		AND crashes > 0
		AND next_at <= :now
	ORDER BY next_at, id
	LIMIT 1
)
RETURNING id, campaign_id, line, email, domain, "key", fields, attempts, next_at, message_id,
	possible_duplicate, crashes
