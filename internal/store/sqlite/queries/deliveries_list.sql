-- deliveries_list: a campaign's deliveries in id order, filtered by the JSON
-- arrays :states and :classes (empty array: no filter on that column).
SELECT id, campaign_id, line, email, domain, "key", fields, state, attempts, next_at,
	lease_owner, lease_until, class, step, code, enhanced, text, host, via, message_id,
	possible_duplicate, created_at, updated_at, delivered_at
FROM deliveries
WHERE campaign_id = :campaign
	AND (json_array_length(:states) = 0 OR state IN (SELECT value FROM json_each(:states)))
	AND (json_array_length(:classes) = 0 OR class IN (SELECT value FROM json_each(:classes)))
ORDER BY id
