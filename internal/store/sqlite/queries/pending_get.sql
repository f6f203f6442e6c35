-- pending_get: one pending subscription.
SELECT id, list_id, email, domain, "key", fields, source, ip, created_at, confirmed_at, message
FROM pending_subscriptions
WHERE id = :id
