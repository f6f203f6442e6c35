-- consents_list: the log of a list and of every list, for one address or all.
SELECT id, list_id, email, "key", action, source, ip, requested_at, confirmed_at, created_at
FROM consents
WHERE list_id IN (:list, 0) AND (:key = '' OR "key" = :key)
ORDER BY id
