-- campaign_set_diagnosis
UPDATE campaigns SET diagnosis = :diagnosis WHERE id = :campaign
