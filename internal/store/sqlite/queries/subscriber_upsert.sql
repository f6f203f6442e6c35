-- subscriber_upsert: one subscriber of an import. A key already in the
-- list updates the row's address and fields and keeps its id, source and
-- created_at. The id returned tells the two apart: a row inserted by this
-- import has an id above the largest one before it (subscribers_max_id;
-- the write lock is held, so no one else inserts meanwhile).
INSERT INTO subscribers (list_id, email, domain, "key", fields, source, created_at, updated_at)
VALUES (:list, :email, :domain, :key, :fields, :source, :now, :now)
ON CONFLICT (list_id, "key") DO UPDATE SET
	email = excluded.email,
	domain = excluded.domain,
	fields = excluded.fields,
	updated_at = excluded.updated_at
RETURNING id
