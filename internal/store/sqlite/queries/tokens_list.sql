-- tokens_list: every API token, by name.
SELECT id, name, hash, created_at, last_used FROM api_tokens ORDER BY name
