-- counts_next_due: earliest next_at among rows that can become due (NULL if none).
SELECT min(next_at) FROM deliveries
WHERE campaign_id = :campaign AND state IN ('pending', 'deferred')
