-- subscriber_key_taken: a row when another subscriber (not :id) of the
-- list has the key.
SELECT 1 FROM subscribers WHERE list_id = :list AND "key" = :key AND id <> :id
