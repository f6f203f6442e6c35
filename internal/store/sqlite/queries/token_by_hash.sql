-- token_by_hash: the token whose SHA-256 is :hash.
SELECT id, name, hash, created_at, last_used FROM api_tokens WHERE hash = :hash
