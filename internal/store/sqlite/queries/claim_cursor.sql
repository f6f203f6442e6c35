-- claim_cursor: the highest id leased by a range claim of the campaign;
-- fresh rows above it are not leased (0002_claims.sql).
SELECT coalesce(max(last_id), 0) FROM claims WHERE campaign_id = :campaign
