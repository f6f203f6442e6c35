-- user_email_taken: is :email used by a user, whatever its case?
SELECT 1 FROM users WHERE lower(email) = lower(:email)
