-- list_rename: a list's new name (the UNIQUE constraint guards it).
UPDATE lists SET name = :name WHERE id = :list
