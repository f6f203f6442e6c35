-- suppression_from_delivery: the delivery's key goes on the suppression
-- list with the campaign's name (a hard bounce or a complaint read from
-- the bounce mailbox). An entry already there is kept.
INSERT INTO suppressions ("key", reason, source, campaign, code, enhanced, text, created_at)
SELECT d."key", :reason, :source, c.name, :code, :enhanced, :text, :at
FROM deliveries AS d
JOIN campaigns AS c ON c.id = d.campaign_id
WHERE d.id = :id AND d.campaign_id = :campaign
ON CONFLICT ("key") DO NOTHING
