-- token_delete: revoke one token.
DELETE FROM api_tokens WHERE id = :id
