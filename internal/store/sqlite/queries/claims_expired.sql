-- claims_expired: the range claims whose lease ended before :now (all when
-- :now is 0).
SELECT id, first_id, last_id FROM claims
WHERE campaign_id = :campaign AND (:now = 0 OR lease_until < :now)
