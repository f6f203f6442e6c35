-- review_insert: keep a message of the bounce mailbox for review, once.
INSERT INTO bounce_reviews (mailbox, uid, reason, subject, sender, data, created_at)
VALUES (:mailbox, :uid, :reason, :subject, :sender, :data, :at)
ON CONFLICT (mailbox, uid) DO NOTHING
