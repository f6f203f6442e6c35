-- release_leases: sending rows whose lease ended before :now (all of them
-- when :now is 0) go back to pending, due at :due. The message may have gone
-- out, so the row is flagged as a possible duplicate. attempts is kept: it is
-- the fence that turns away the late worker's result. The release counts as
-- a crash while sending; at the :limit-th in a row the recipient is failed
-- as crash-loop with :reason, so the rest of the list can finish.
UPDATE deliveries
SET state = CASE WHEN crashes + 1 >= :limit THEN 'failed' ELSE 'pending' END,
	class = CASE WHEN crashes + 1 >= :limit THEN 'crash-loop' ELSE class END,
	text = CASE WHEN crashes + 1 >= :limit THEN :reason ELSE text END,
	code = CASE WHEN crashes + 1 >= :limit THEN 0 ELSE code END,
	enhanced = CASE WHEN crashes + 1 >= :limit THEN '' ELSE enhanced END,
	crashes = crashes + 1,
	next_at = :due,
	lease_owner = '',
	lease_until = 0,
	possible_duplicate = 1,
	updated_at = :due
WHERE campaign_id = :campaign
	AND state = 'sending'
	AND (:now = 0 OR lease_until < :now)
