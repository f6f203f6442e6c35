-- setting_get_w: one settings value, read in a write transaction.
SELECT value FROM settings WHERE "key" = :key
