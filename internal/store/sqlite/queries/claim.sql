-- claim: lease up to :limit due rows of a campaign that were claimed before
-- (next_at > 0; fresh rows go by range, claim_fresh.sql), in next_at then id
-- order (the subquery walks the partial index deliveries_due). RETURNING does not
-- keep that order: the caller sorts by (next_at, id), which the update leaves
-- unchanged. Only the columns a sender needs are returned (store.Store's
-- Claim comment lists them); the caller fills state and lease from its
-- arguments.
UPDATE deliveries
SET state = 'sending',
	attempts = attempts + 1,
	lease_owner = :owner,
	lease_until = :lease_until,
	updated_at = :now
WHERE id IN (
	SELECT id FROM deliveries
	WHERE campaign_id = :campaign
		AND state IN ('pending', 'deferred')
		AND next_at > 0
		AND next_at <= :now
	ORDER BY next_at, id
	LIMIT :limit
)
RETURNING id, campaign_id, line, email, domain, "key", fields, attempts, next_at, message_id,
	possible_duplicate, crashes
