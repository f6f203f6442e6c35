-- 0005_lists: lists of subscribers kept across campaigns. A list's columns
-- are its merge-field names in the order they were first imported (a JSON
-- array of strings, the email column included), so that an export writes
-- them back in that order. A subscriber's fields are stored as the
-- deliveries' are: one compact JSON object (fields.go). Deleting a list
-- deletes its subscribers; campaigns made from it keep their own copies
-- of the recipients.
CREATE TABLE lists (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	columns    TEXT    NOT NULL DEFAULT '[]'
) STRICT;

CREATE TABLE subscribers (
	id         INTEGER PRIMARY KEY,
	list_id    INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
	email      TEXT    NOT NULL,
	domain     TEXT    NOT NULL,
	"key"      TEXT    NOT NULL,
	fields     TEXT    NOT NULL DEFAULT '{}', -- compact JSON object
	source     TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

-- One subscriber per address key in a list: an import updates the row of
-- a key it finds.
CREATE UNIQUE INDEX subscribers_key ON subscribers (list_id, "key");

-- A list's subscribers in id order without a sort (the rowid ends the
-- index key), for keyset paging and counts.
CREATE INDEX subscribers_list ON subscribers (list_id);
