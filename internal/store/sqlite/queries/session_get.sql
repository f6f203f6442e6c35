-- session_get: one session by the hash of its cookie value.
SELECT id, user_id, created_at, expires_at FROM sessions WHERE id = :id
