-- counts_by_state
SELECT state, count(*) FROM deliveries WHERE campaign_id = :campaign GROUP BY state
