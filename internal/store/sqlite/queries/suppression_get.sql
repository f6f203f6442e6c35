-- suppression_get
SELECT 1 FROM suppressions WHERE "key" = :key
