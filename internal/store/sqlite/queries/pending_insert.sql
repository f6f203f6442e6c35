-- pending_insert: a subscription asked for through a list's form.
INSERT INTO pending_subscriptions (list_id, email, domain, "key", fields, source, ip, created_at)
VALUES (:list, :email, :domain, :key, :fields, :source, :ip, :at)
