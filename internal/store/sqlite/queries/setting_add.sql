-- setting_add: set one settings value unless the key has one already.
INSERT INTO settings ("key", value) VALUES (:key, :value)
ON CONFLICT ("key") DO NOTHING
