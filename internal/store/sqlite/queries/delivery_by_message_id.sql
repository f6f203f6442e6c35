-- delivery_by_message_id: the delivery whose message had :message_id
-- (a bounce matched without a VERP token), newest first.
SELECT id, campaign_id, line, email, domain, "key", fields, state, attempts, next_at,
	lease_owner, lease_until, class, step, code, enhanced, text, host, via, message_id,
	possible_duplicate, created_at, updated_at, delivered_at, crashes, bounced_at, complained_at
FROM deliveries
WHERE message_id = :message_id AND message_id != ''
ORDER BY id DESC
LIMIT 1
