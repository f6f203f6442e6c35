-- subscriber_update: a subscriber's address and fields, edited.
UPDATE subscribers
SET email = :email, domain = :domain, "key" = :key, fields = :fields, updated_at = :now
WHERE list_id = :list AND id = :id
