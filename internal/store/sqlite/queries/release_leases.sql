-- release_leases: sending rows whose lease ended before :now (all of them
-- when :now is 0) go back to pending, due at :due. The message may have gone
-- out, so the row is flagged as a possible duplicate. attempts is kept: it is
-- the fence that turns away the late worker's result.
UPDATE deliveries
SET state = 'pending',
	next_at = :due,
	lease_owner = '',
	lease_until = 0,
	possible_duplicate = 1,
	updated_at = :due
WHERE campaign_id = :campaign
	AND state = 'sending'
	AND (:now = 0 OR lease_until < :now)
