-- 0001_init: campaigns, their recipients (deliveries), kept messages and the
-- suppression list. Times are Unix milliseconds; 0 means "not set".

CREATE TABLE campaigns (
	id            INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL UNIQUE,
	created_at    INTEGER NOT NULL,
	status        TEXT    NOT NULL CHECK (status IN ('running', 'paused', 'done', 'cancelled')),
	status_reason TEXT    NOT NULL DEFAULT '',
	route         TEXT    NOT NULL DEFAULT '',
	route_config  BLOB,
	profile       BLOB,
	max_age_ms    INTEGER NOT NULL DEFAULT 0,
	retry_min_ms  INTEGER NOT NULL DEFAULT 0,
	template      BLOB,
	template_name TEXT    NOT NULL DEFAULT '',
	html          BLOB,
	html_name     TEXT    NOT NULL DEFAULT '',
	diagnosis     BLOB
) STRICT;

-- Attachments keep their insertion order through the rowid.
CREATE TABLE attachments (
	campaign_id  INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
	name         TEXT    NOT NULL,
	content_type TEXT    NOT NULL DEFAULT '',
	data         BLOB
) STRICT;

CREATE INDEX attachments_campaign ON attachments (campaign_id);

CREATE TABLE deliveries (
	id                 INTEGER PRIMARY KEY,
	campaign_id        INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
	line               INTEGER NOT NULL DEFAULT 0,
	email              TEXT    NOT NULL,
	domain             TEXT    NOT NULL,
	"key"              TEXT    NOT NULL,
	fields             TEXT    NOT NULL DEFAULT '{}', -- compact JSON object
	state              TEXT    NOT NULL CHECK (state IN ('pending', 'sending', 'deferred', 'delivered', 'failed', 'suppressed')),
	attempts           INTEGER NOT NULL DEFAULT 0,
	next_at            INTEGER NOT NULL DEFAULT 0,
	lease_owner        TEXT    NOT NULL DEFAULT '',
	lease_until        INTEGER NOT NULL DEFAULT 0,
	class              TEXT    NOT NULL DEFAULT '',
	step               TEXT    NOT NULL DEFAULT '',
	code               INTEGER NOT NULL DEFAULT 0,
	enhanced           TEXT    NOT NULL DEFAULT '',
	text               TEXT    NOT NULL DEFAULT '',
	host               TEXT    NOT NULL DEFAULT '',
	via                TEXT    NOT NULL DEFAULT '',
	message_id         TEXT    NOT NULL DEFAULT '',
	possible_duplicate INTEGER NOT NULL DEFAULT 0,
	created_at         INTEGER NOT NULL,
	updated_at         INTEGER NOT NULL,
	delivered_at       INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Claim and Counts.NextDue: only the rows that can become due are indexed,
-- in the order Claim takes them (next_at, then the rowid id).
CREATE INDEX deliveries_due ON deliveries (campaign_id, next_at)
	WHERE state IN ('pending', 'deferred');

-- Counts, ReleaseLeases (sending), Requeue (failed by class), filtered lists.
CREATE INDEX deliveries_state ON deliveries (campaign_id, state, class);

-- Deliveries in id order without a sort (the rowid ends every index key),
-- so a list of a million rows streams from its first row.
CREATE INDEX deliveries_campaign ON deliveries (campaign_id);

CREATE TABLE messages (
	delivery_id INTEGER PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
	campaign_id INTEGER NOT NULL,
	message_id  TEXT    NOT NULL DEFAULT '',
	data        BLOB    NOT NULL
) STRICT;

CREATE INDEX messages_campaign ON messages (campaign_id);

CREATE TABLE suppressions (
	"key"      TEXT    PRIMARY KEY,
	reason     TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
