-- subscriber_get: one subscriber of a list.
SELECT id, list_id, email, domain, "key", fields, source, created_at, updated_at
FROM subscribers
WHERE list_id = :list AND id = :id
