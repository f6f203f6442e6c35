-- token_taken: is :name or :hash used by a token?
SELECT 1 FROM api_tokens WHERE name = :name OR hash = :hash
