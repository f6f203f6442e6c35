-- claim_insert: lease the fresh rows first_id..last_id (0002_claims.sql).
INSERT INTO claims (campaign_id, owner, lease_until, first_id, last_id)
VALUES (:campaign, :owner, :lease_until, :first_id, :last_id)
