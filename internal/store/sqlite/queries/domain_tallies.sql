-- domain_tallies: a campaign's deliveries counted by domain, state,
-- class and host, for the per-domain report.
SELECT domain, state, class, host, count(*) FROM deliveries
WHERE campaign_id = :campaign
GROUP BY domain, state, class, host
ORDER BY domain
