-- counts_claimed: fresh rows inside range claims, which Counts reports as
-- sending (0002_claims.sql).
SELECT count(*) FROM deliveries
WHERE campaign_id = :campaign
	AND state IN ('pending', 'deferred')
	AND next_at = 0
	AND id <= (SELECT coalesce(max(last_id), 0) FROM claims WHERE campaign_id = :campaign)
