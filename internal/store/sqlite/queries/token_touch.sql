-- token_touch: record when a token was last used.
UPDATE api_tokens SET last_used = :at WHERE id = :id
