-- list_set_columns: a list's columns (JSON array) after they grew.
UPDATE lists SET columns = :columns WHERE id = :list
