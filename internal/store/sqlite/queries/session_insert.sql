-- session_insert: a new session, keyed by the hash of its cookie value.
INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (:id, :user_id, :created_at, :expires_at)
