-- list_exists: a row when the list exists.
SELECT 1 FROM lists WHERE id = :list
