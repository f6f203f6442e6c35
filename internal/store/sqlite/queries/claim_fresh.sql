-- claim_fresh: up to :limit fresh rows (never claimed) above the cursor, in
-- id order, for a range claim. The IN term repeats the partial index's
-- condition so that deliveries_due (campaign_id, next_at = 0, id > cursor)
-- is used. The columns are those of claim.sql, attempts counting this one.
SELECT id, campaign_id, line, email, domain, "key", fields, attempts + 1, next_at, message_id,
	possible_duplicate, crashes
FROM deliveries
WHERE campaign_id = :campaign
	AND state IN ('pending', 'deferred')
	AND next_at = 0
	AND id > :cursor
ORDER BY next_at, id
LIMIT :limit
