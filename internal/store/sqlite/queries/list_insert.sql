-- list_insert: a new, empty list.
INSERT INTO lists (name, created_at) VALUES (:name, :created_at)
