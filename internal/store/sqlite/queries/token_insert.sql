-- token_insert: a new API token; the caller checked token_taken first.
INSERT INTO api_tokens (name, hash, created_at, last_used) VALUES (:name, :hash, :created_at, 0)
