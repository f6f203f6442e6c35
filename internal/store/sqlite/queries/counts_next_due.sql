-- counts_next_due: the earliest time a row can become due (NULL if none):
-- the earliest next_at of rows claimed before, or the import time when
-- fresh rows wait above the range claims (0002_claims.sql). Fresh rows
-- inside a range claim are in flight, not due.
SELECT min(t) FROM (
	SELECT min(next_at) AS t FROM deliveries
	WHERE campaign_id = :campaign AND state IN ('pending', 'deferred') AND next_at > 0
	UNION ALL
	SELECT t FROM (
		SELECT created_at AS t FROM deliveries
		WHERE campaign_id = :campaign AND state IN ('pending', 'deferred') AND next_at = 0
			AND id > (SELECT coalesce(max(last_id), 0) FROM claims WHERE campaign_id = :campaign)
		ORDER BY next_at, id
		LIMIT 1
	)
)
