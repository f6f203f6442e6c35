-- subscribers_max_id: the largest subscriber id, 0 when there is none.
-- A row inserted after this has a larger id (INTEGER PRIMARY KEY without
-- AUTOINCREMENT takes the largest rowid plus one).
SELECT coalesce(max(id), 0) FROM subscribers
