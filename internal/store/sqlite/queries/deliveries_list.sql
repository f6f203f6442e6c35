-- deliveries_list: a campaign's deliveries in id order after :after (keyset
-- paging: the primary key finds the first row), filtered by the JSON
-- arrays :states and :classes (empty array: no filter on that column).
-- A fresh row inside a range claim (0002_claims.sql) is shown as what it
-- is: sending, its attempt counted, under the claim's owner and lease. The
-- claim is looked up only for fresh rows, by the index on claims.last_id.
SELECT id, campaign_id, line, email, domain, "key", fields, state, attempts, next_at,
	lease_owner, lease_until, class, step, code, enhanced, text, host, via, message_id,
	possible_duplicate, created_at, updated_at, delivered_at, crashes, bounced_at, complained_at
FROM (
	SELECT d.id, d.campaign_id, d.line, d.email, d.domain, d."key", d.fields,
		CASE WHEN k.id IS NULL THEN d.state ELSE 'sending' END AS state,
		d.attempts + (k.id IS NOT NULL) AS attempts,
		d.next_at,
		coalesce(k.owner, d.lease_owner) AS lease_owner,
		coalesce(k.lease_until, d.lease_until) AS lease_until,
		d.class, d.step, d.code, d.enhanced, d.text, d.host, d.via, d.message_id,
		d.possible_duplicate, d.created_at, d.updated_at, d.delivered_at, d.crashes,
		d.bounced_at, d.complained_at
	FROM deliveries AS d
	LEFT JOIN claims AS k ON k.id = (CASE WHEN d.state = 'pending' AND d.next_at = 0 THEN (
		SELECT c.id FROM claims AS c
		WHERE c.campaign_id = d.campaign_id AND c.last_id >= d.id AND c.first_id <= d.id
		ORDER BY c.last_id
		LIMIT 1) END)
	WHERE d.campaign_id = :campaign AND d.id > :after
)
WHERE (json_array_length(:states) = 0 OR state IN (SELECT value FROM json_each(:states)))
	AND (json_array_length(:classes) = 0 OR class IN (SELECT value FROM json_each(:classes)))
ORDER BY id
