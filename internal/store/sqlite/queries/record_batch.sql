-- record_batch: the outcomes of several attempts in one statement, the same
-- update as record.sql row for row. Parameters are positional, 14 per
-- result in the column order of r; prepare() repeats the VALUES tuple for
-- each chunk size. Every id appears at most once in a chunk (the caller
-- checks): UPDATE … FROM updates a target row once, with an arbitrary one of
-- its matching source rows.
UPDATE deliveries
SET state = r.r_state,
	-- next_at = 0 is kept for rows never claimed (0002_claims.sql).
	next_at = CASE WHEN r.r_state IN ('pending', 'deferred') THEN max(r.r_next_at, 1) ELSE r.r_next_at END,
	attempts = r.r_attempt,
	lease_owner = '',
	lease_until = 0,
	class = r.r_class,
	step = r.r_step,
	code = r.r_code,
	enhanced = r.r_enhanced,
	text = r.r_text,
	host = r.r_host,
	via = r.r_via,
	message_id = CASE WHEN deliveries.message_id = '' THEN r.r_message_id ELSE deliveries.message_id END,
	possible_duplicate = deliveries.possible_duplicate OR r.r_possible_duplicate,
	crashes = 0, -- the attempt ended without a crash (0004_crashes.sql)
	updated_at = r.r_at,
	delivered_at = CASE WHEN r.r_state = 'delivered' THEN r.r_at ELSE deliveries.delivered_at END
FROM (
	SELECT column1 AS r_id, column2 AS r_attempt, column3 AS r_state, column4 AS r_next_at,
		column5 AS r_class, column6 AS r_step, column7 AS r_code, column8 AS r_enhanced,
		column9 AS r_text, column10 AS r_host, column11 AS r_via, column12 AS r_message_id,
		column13 AS r_possible_duplicate, column14 AS r_at
	FROM (VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?))
) AS r
WHERE deliveries.id = r.r_id
	AND (deliveries.state = 'sending' AND deliveries.attempts = r.r_attempt
		-- a fresh row in flight under a range claim (0002_claims.sql)
		OR deliveries.state = 'pending' AND deliveries.next_at = 0 AND deliveries.attempts + 1 = r.r_attempt)
