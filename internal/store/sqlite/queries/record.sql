-- record: the outcome of one attempt. The fence (state sending and the
-- attempt number the row was claimed with) makes a late or duplicate result
-- a no-op. The Message-ID is fixed by the first attempt that reports one;
-- PossibleDuplicate, once set, stays set.
UPDATE deliveries
SET state = :state,
	-- next_at = 0 is kept for rows never claimed (0002_claims.sql).
	next_at = CASE WHEN :state IN ('pending', 'deferred') THEN max(:next_at, 1) ELSE :next_at END,
	attempts = :attempt,
	lease_owner = '',
	lease_until = 0,
	class = :class,
	step = :step,
	code = :code,
	enhanced = :enhanced,
	text = :text,
	host = :host,
	via = :via,
	message_id = CASE WHEN message_id = '' THEN :message_id ELSE message_id END,
	possible_duplicate = possible_duplicate OR :possible_duplicate,
	crashes = 0, -- the attempt ended without a crash (0004_crashes.sql)
	updated_at = :at,
	delivered_at = CASE WHEN :state = 'delivered' THEN :at ELSE delivered_at END
WHERE id = :id
	AND (state = 'sending' AND attempts = :attempt
		-- a fresh row in flight under a range claim (0002_claims.sql)
		OR state = 'pending' AND next_at = 0 AND attempts + 1 = :attempt)
