-- setting_get: one settings value.
SELECT value FROM settings WHERE "key" = :key
