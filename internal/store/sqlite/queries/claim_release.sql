-- claim_release: the rows of an ended range claim that got no result go back
-- to pending with their attempt counted, flagged as possible duplicates
-- (the same as release_leases.sql for per-row leases, crash count included).
UPDATE deliveries
SET attempts = attempts + 1,
	state = CASE WHEN crashes + 1 >= :limit THEN 'failed' ELSE state END,
	class = CASE WHEN crashes + 1 >= :limit THEN 'crash-loop' ELSE class END,
	text = CASE WHEN crashes + 1 >= :limit THEN :reason ELSE text END,
	crashes = crashes + 1,
	next_at = :due,
	possible_duplicate = 1,
	updated_at = :due
WHERE campaign_id = :campaign
	AND state IN ('pending', 'deferred')
	AND next_at = 0
	AND id BETWEEN :first_id AND :last_id
