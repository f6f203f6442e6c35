-- pending_list: a list's pending subscriptions, newest first.
SELECT id, list_id, email, domain, "key", fields, source, ip, created_at, confirmed_at, message
FROM pending_subscriptions
WHERE list_id = :list
ORDER BY id DESC
LIMIT :limit
