-- reviews_list: the messages kept for review, oldest first.
SELECT id, mailbox, uid, reason, subject, sender, data, created_at
FROM bounce_reviews
ORDER BY id
