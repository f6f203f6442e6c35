-- list_columns: a list's columns (JSON array), inside a write transaction.
SELECT columns FROM lists WHERE id = :list
