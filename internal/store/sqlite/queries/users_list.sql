-- users_list: every user, oldest first.
SELECT id, email, password_hash, created_at FROM users ORDER BY id
