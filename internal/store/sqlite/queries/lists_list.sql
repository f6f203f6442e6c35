-- lists_list: every list by name, with its number of subscribers.
SELECT l.id, l.name, l.created_at, l.columns,
	(SELECT count(*) FROM subscribers AS s WHERE s.list_id = l.id)
FROM lists AS l
ORDER BY l.name
