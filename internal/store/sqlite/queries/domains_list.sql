-- domains_list: distinct recipient domains of a campaign, sorted.
SELECT DISTINCT domain FROM deliveries WHERE campaign_id = :campaign ORDER BY domain
