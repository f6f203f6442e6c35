-- subscribers_max_id: the highest subscriber id of every list, read before
-- an import: the rows the import adds get higher ones (INTEGER PRIMARY
-- KEY assigns max(rowid) + 1), the rows it updates keep theirs.
SELECT coalesce(max(id), 0) FROM subscribers
