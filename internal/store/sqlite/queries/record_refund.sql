-- record_refund: the attempt never started; the row goes back to waiting
-- with its attempt counter decremented and the previous outcome kept.
-- Same fence as record.
UPDATE deliveries
SET state = :state,
	-- next_at = 0 is kept for rows never claimed (0002_claims.sql): a
	-- refunded range-claimed row is due again like any other.
	next_at = max(:next_at, 1),
	-- a range-claimed row never had its attempt counted
	attempts = CASE WHEN state = 'sending' THEN attempts - 1 ELSE attempts END,
	lease_owner = '',
	lease_until = 0,
	updated_at = :at
WHERE id = :id
	AND (state = 'sending' AND attempts = :attempt
		OR state = 'pending' AND next_at = 0 AND attempts + 1 = :attempt)
