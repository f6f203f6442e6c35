-- user_by_email: the user of :email, whatever its case.
SELECT id, email, password_hash, created_at FROM users WHERE lower(email) = lower(:email)
