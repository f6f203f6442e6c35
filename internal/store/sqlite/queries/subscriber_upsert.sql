-- subscriber_upsert: subscribers of an import. Positional parameters, one
-- parenthesised tuple per row: list_id, email, domain, key, fields, source,
-- created_at, updated_at. The code repeats the tuple after VALUES to
-- upsert many rows per statement. A key already in the list (or earlier
-- in the same statement) updates that row's address and fields and keeps
-- its id, source and created_at.
INSERT INTO subscribers (list_id, email, domain, "key", fields, source, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (list_id, "key") DO UPDATE SET
	email = excluded.email,
	domain = excluded.domain,
	fields = excluded.fields,
	updated_at = excluded.updated_at
