-- claim_delete: forget a released range claim.
DELETE FROM claims WHERE id = :id
