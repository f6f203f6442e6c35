-- 0007_bounces: what the bounce mailbox tells after a message was accepted.
-- bounced_at is when a bounce for the delivery was read (the row then
-- also carries the bounce's class and reply, and a delivered row becomes
-- failed), complained_at when the recipient reported it as spam (ARF).
ALTER TABLE deliveries ADD COLUMN bounced_at    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN complained_at INTEGER NOT NULL DEFAULT 0;

-- A bounce without a VERP token is matched by the original Message-ID.
CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id != '';

-- Messages of the bounce mailbox that could not be read as a bounce or a
-- complaint, or matched to no delivery, kept for a person to look at.
CREATE TABLE bounce_reviews (
	id          INTEGER PRIMARY KEY,
	mailbox     TEXT    NOT NULL,
	uid         TEXT    NOT NULL,
	reason      TEXT    NOT NULL DEFAULT '',
	subject     TEXT    NOT NULL DEFAULT '',
	sender      TEXT    NOT NULL DEFAULT '',
	data        BLOB    NOT NULL,
	created_at  INTEGER NOT NULL,
	UNIQUE (mailbox, uid)
) STRICT;

-- Messages of a POP3 bounce mailbox already processed, by their UIDL
-- (RFC 1939 §7), so a second run leaves them alone.
CREATE TABLE mailbox_seen (
	mailbox    TEXT    NOT NULL,
	uid        TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (mailbox, uid)
) STRICT, WITHOUT ROWID;
