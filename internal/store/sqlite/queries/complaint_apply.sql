-- complaint_apply: the recipient reported the message as spam; applied once.
UPDATE deliveries SET complained_at = :at, updated_at = :at
WHERE id = :id AND campaign_id = :campaign AND complained_at = 0
