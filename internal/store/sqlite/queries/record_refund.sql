-- record_refund: the attempt never started; the row goes back to waiting
-- with its attempt counter decremented and the previous outcome kept.
-- Same fence as record.
UPDATE deliveries
SET state = :state,
	next_at = :next_at,
	attempts = attempts - 1,
	lease_owner = '',
	lease_until = 0,
	updated_at = :at
WHERE id = :id AND state = 'sending' AND attempts = :attempt
