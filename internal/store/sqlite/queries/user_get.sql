-- user_get: one user by id.
SELECT id, email, password_hash, created_at FROM users WHERE id = :id
