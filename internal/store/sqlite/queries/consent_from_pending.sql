-- consent_from_pending: the log entry of a confirmed subscription.
INSERT INTO consents (list_id, email, "key", action, source, ip, requested_at, confirmed_at, created_at)
SELECT list_id, email, "key", 'subscribe', source, ip, created_at, confirmed_at, :at
FROM pending_subscriptions
WHERE id = :id
