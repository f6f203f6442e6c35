-- counts_failed_by_class: final failures by outcome class.
SELECT class, count(*) FROM deliveries
WHERE campaign_id = :campaign AND state = 'failed'
GROUP BY class
