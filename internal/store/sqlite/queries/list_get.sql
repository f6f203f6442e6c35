-- list_get: one list and its number of subscribers.
SELECT l.id, l.name, l.created_at, l.columns,
	(SELECT count(*) FROM subscribers AS s WHERE s.list_id = l.id)
FROM lists AS l
WHERE l.id = :list
