-- claim_suppressed: a claimed row whose address was suppressed after the
-- import (a hard bounce in another campaign, a manual entry) is not sent:
-- it becomes suppressed, its attempt given back, with the reason.
UPDATE deliveries
SET state = 'suppressed',
	attempts = CASE WHEN state = 'sending' THEN attempts - 1 ELSE attempts END,
	lease_owner = '',
	lease_until = 0,
	text = :reason,
	updated_at = :now
WHERE id = :id
