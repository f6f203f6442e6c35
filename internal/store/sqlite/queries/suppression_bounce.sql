-- suppression_bounce: in the transaction of Record, a hard bounce puts the
-- recipient's key on the suppression list with the campaign and the
-- server's reply, once its result was applied (the row is failed with the
-- attempt of the result).
INSERT INTO suppressions ("key", reason, source, campaign, code, enhanced, text, created_at)
SELECT d."key", :reason, :source, c.name, :code, :enhanced, :text, :at
FROM deliveries AS d
JOIN campaigns AS c ON c.id = d.campaign_id
WHERE d.id = :id AND d.state = 'failed' AND d.attempts = :attempt
ON CONFLICT ("key") DO NOTHING
