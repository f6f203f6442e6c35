-- 0009_consent: double opt-in subscriptions and the consent log.
--
-- A subscription asked for through a list's public form waits in
-- pending_subscriptions until its confirmation link is followed; only then
-- is the address added to the list. The rows stay after confirmation
-- (confirmed_at set): they count the confirmation mails sent to an address
-- (the per-address limit) and are the request half of the evidence.
-- message keeps the confirmation message when the list's route is the
-- sandbox. No foreign key to lists: a row of a deleted list is harmless and
-- its link then confirms nothing.
CREATE TABLE pending_subscriptions (
	id           INTEGER PRIMARY KEY,
	list_id      INTEGER NOT NULL,
	email        TEXT    NOT NULL,
	domain       TEXT    NOT NULL,
	"key"        TEXT    NOT NULL,
	fields       TEXT    NOT NULL DEFAULT '{}', -- compact JSON object
	source       TEXT    NOT NULL DEFAULT '',
	ip           TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	confirmed_at INTEGER NOT NULL DEFAULT 0,
	message      BLOB
) STRICT;

CREATE INDEX pending_subscriptions_key ON pending_subscriptions ("key", created_at);
CREATE INDEX pending_subscriptions_list ON pending_subscriptions (list_id);

-- The consent log: every subscription and unsubscription with its time,
-- source and client address, appended and never changed. list_id 0: an
-- unsubscribe from every list (a campaign's one-click link). No foreign
-- key: the evidence outlives the list.
CREATE TABLE consents (
	id           INTEGER PRIMARY KEY,
	list_id      INTEGER NOT NULL,
	email        TEXT    NOT NULL,
	"key"        TEXT    NOT NULL,
	action       TEXT    NOT NULL,
	source       TEXT    NOT NULL DEFAULT '',
	ip           TEXT    NOT NULL DEFAULT '',
	requested_at INTEGER NOT NULL DEFAULT 0,
	confirmed_at INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX consents_list ON consents (list_id, "key");
