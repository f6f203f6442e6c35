-- user_insert: a new user; the caller checked user_email_taken first.
INSERT INTO users (email, password_hash, created_at) VALUES (:email, :password_hash, :created_at)
