-- campaign_feedback: a campaign's accepted messages, and of them those
-- reported as spam and those that bounced later.
SELECT count(*),
       coalesce(sum(complained_at != 0), 0),
       coalesce(sum(bounced_at != 0), 0)
FROM deliveries
WHERE campaign_id = :campaign AND delivered_at != 0
