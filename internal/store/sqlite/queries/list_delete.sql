-- list_delete: a list; its subscribers go with it (ON DELETE CASCADE).
DELETE FROM lists WHERE id = :list
