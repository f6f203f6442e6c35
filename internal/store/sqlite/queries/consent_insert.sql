-- consent_insert: append one entry to the consent log.
INSERT INTO consents (list_id, email, "key", action, source, ip, requested_at, confirmed_at, created_at)
VALUES (:list, :email, :key, :action, :source, :ip, :requested, :confirmed, :at)
