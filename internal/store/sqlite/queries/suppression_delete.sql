-- suppression_delete: take a key off the suppression list.
DELETE FROM suppressions WHERE "key" = :key
