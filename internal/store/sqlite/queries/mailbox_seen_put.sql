-- mailbox_seen_put: remember a processed message of the mailbox.
INSERT INTO mailbox_seen (mailbox, uid, created_at) VALUES (:mailbox, :uid, :at)
ON CONFLICT (mailbox, uid) DO NOTHING
