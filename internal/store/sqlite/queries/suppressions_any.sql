-- suppressions_any: is the suppression list empty? (Claim skips its checks
-- when it is.)
SELECT EXISTS (SELECT 1 FROM suppressions)
