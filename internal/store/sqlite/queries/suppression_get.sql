-- suppression_get: the entry that suppresses an address, its own key
-- first, else its domain's ("@" and the domain).
SELECT reason FROM suppressions
WHERE "key" IN (:key, :domain_key)
ORDER BY "key" = :key DESC
LIMIT 1
