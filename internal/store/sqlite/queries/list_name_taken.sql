-- list_name_taken: a row when another list (not :list) has the name.
SELECT 1 FROM lists WHERE name = :name AND id <> :list
