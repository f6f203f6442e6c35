-- subscribers_list: a list's subscribers with an id above :after, in id
-- order. Search and limit are applied by the caller as it reads.
SELECT id, list_id, email, domain, "key", fields, source, created_at, updated_at
FROM subscribers
WHERE list_id = :list AND id > :after
ORDER BY id
