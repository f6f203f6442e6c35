-- campaign_set_status
UPDATE campaigns SET status = :status, status_reason = :reason WHERE id = :campaign
