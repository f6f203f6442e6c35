-- setting_put: set one settings value, replacing the old one.
INSERT INTO settings ("key", value) VALUES (:key, :value)
ON CONFLICT ("key") DO UPDATE SET value = excluded.value
