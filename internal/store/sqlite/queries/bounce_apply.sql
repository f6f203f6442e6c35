-- bounce_apply: a final failure read from the bounce mailbox. A delivered
-- (or failed) row becomes failed with the bounce's class and reply; a row
-- still queued keeps its state (its next attempt decides) but records the
-- bounce. Applied once: a row with bounced_at set is left alone.
UPDATE deliveries SET
	state = CASE WHEN state IN ('delivered', 'failed') THEN 'failed' ELSE state END,
	class = :class, step = 'body', code = :code, enhanced = :enhanced, text = :text,
	bounced_at = :at, updated_at = :at
WHERE id = :id AND campaign_id = :campaign AND bounced_at = 0
