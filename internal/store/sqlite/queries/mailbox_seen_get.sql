-- mailbox_seen_get: was this message of the mailbox processed?
SELECT count(*) FROM mailbox_seen WHERE mailbox = :mailbox AND uid = :uid
