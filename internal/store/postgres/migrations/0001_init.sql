-- 0001_init: the whole schema of a mailout database on PostgreSQL, as the
-- SQLite store has it after its own migrations, for a fleet of workers.
-- Times are Unix milliseconds (BIGINT), 0 meaning "not set", as in the
-- SQLite store, so both backends compare and order times the same way;
-- to_timestamp(x / 1000.0) shows them. Merge fields and a list's columns
-- are JSONB. Ids are identities: a claim never reuses one.

CREATE TABLE campaigns (
	id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name          TEXT   NOT NULL UNIQUE,
	created_at    BIGINT NOT NULL,
	status        TEXT   NOT NULL CHECK (status IN ('running', 'paused', 'done', 'cancelled')),
	status_reason TEXT   NOT NULL DEFAULT '',
	route         TEXT   NOT NULL DEFAULT '',
	route_config  BYTEA,
	profile       BYTEA,
	max_age_ms    BIGINT NOT NULL DEFAULT 0,
	retry_min_ms  BIGINT NOT NULL DEFAULT 0,
	template      BYTEA,
	template_name TEXT   NOT NULL DEFAULT '',
	html          BYTEA,
	html_name     TEXT   NOT NULL DEFAULT '',
	diagnosis     BYTEA,
	start_at      BIGINT NOT NULL DEFAULT 0
);

-- Attachments keep their insertion order through the id.
CREATE TABLE attachments (
	id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	campaign_id  BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
	name         TEXT   NOT NULL,
	content_type TEXT   NOT NULL DEFAULT '',
	data         BYTEA
);

CREATE INDEX attachments_campaign ON attachments (campaign_id, id);

CREATE TABLE deliveries (
	id                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	campaign_id        BIGINT  NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
	line               INTEGER NOT NULL DEFAULT 0,
	email              TEXT    NOT NULL,
	domain             TEXT    NOT NULL,
	"key"              TEXT    NOT NULL,
	fields             JSONB   NOT NULL DEFAULT '{}',
	state              TEXT    NOT NULL CHECK (state IN ('pending', 'sending', 'deferred', 'delivered', 'failed', 'suppressed')),
	attempts           INTEGER NOT NULL DEFAULT 0,
	next_at            BIGINT  NOT NULL DEFAULT 0,
	lease_owner        TEXT    NOT NULL DEFAULT '',
	lease_until        BIGINT  NOT NULL DEFAULT 0,
	class              TEXT    NOT NULL DEFAULT '',
	step               TEXT    NOT NULL DEFAULT '',
	code               INTEGER NOT NULL DEFAULT 0,
	enhanced           TEXT    NOT NULL DEFAULT '',
	text               TEXT    NOT NULL DEFAULT '',
	host               TEXT    NOT NULL DEFAULT '',
	via                TEXT    NOT NULL DEFAULT '',
	message_id         TEXT    NOT NULL DEFAULT '',
	possible_duplicate BOOLEAN NOT NULL DEFAULT false,
	crashes            INTEGER NOT NULL DEFAULT 0,
	created_at         BIGINT  NOT NULL,
	updated_at         BIGINT  NOT NULL,
	delivered_at       BIGINT  NOT NULL DEFAULT 0,
	bounced_at         BIGINT  NOT NULL DEFAULT 0,
	complained_at      BIGINT  NOT NULL DEFAULT 0
);

-- Claim (FOR UPDATE SKIP LOCKED, in next_at then id order) and
-- Counts.NextDue: only the rows that can become due are indexed.
CREATE INDEX deliveries_due ON deliveries (campaign_id, next_at, id)
	WHERE state IN ('pending', 'deferred');

-- Claim takes a due row released by a crash alone, before anything else.
CREATE INDEX deliveries_suspect ON deliveries (campaign_id, next_at, id)
	WHERE state IN ('pending', 'deferred') AND crashes > 0;

-- Counts, ReleaseLeases (sending), Requeue (failed by class), filtered lists.
CREATE INDEX deliveries_state ON deliveries (campaign_id, state, class);

-- Deliveries in id order, a page at a time.
CREATE INDEX deliveries_campaign ON deliveries (campaign_id, id);

-- A bounce without a VERP token is matched by the original Message-ID.
CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id <> '';

CREATE TABLE messages (
	delivery_id BIGINT PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
	campaign_id BIGINT NOT NULL,
	message_id  TEXT   NOT NULL DEFAULT '',
	data        BYTEA  NOT NULL
);

CREATE INDEX messages_campaign ON messages (campaign_id, delivery_id);

-- The key is a canonical address key, or "@" and an A-label domain for a
-- whole domain.
CREATE TABLE suppressions (
	"key"      TEXT    PRIMARY KEY,
	reason     TEXT    NOT NULL DEFAULT '',
	created_at BIGINT  NOT NULL,
	source     TEXT    NOT NULL DEFAULT '',
	campaign   TEXT    NOT NULL DEFAULT '',
	code       INTEGER NOT NULL DEFAULT 0,
	enhanced   TEXT    NOT NULL DEFAULT '',
	text       TEXT    NOT NULL DEFAULT ''
);

-- Lists of subscribers kept across campaigns. columns: the merge-field
-- names in the order they were first imported (a JSON array).
CREATE TABLE lists (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name       TEXT   NOT NULL UNIQUE,
	created_at BIGINT NOT NULL,
	columns    JSONB  NOT NULL DEFAULT '[]'
);

CREATE TABLE subscribers (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	list_id    BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
	email      TEXT   NOT NULL,
	domain     TEXT   NOT NULL,
	"key"      TEXT   NOT NULL,
	fields     JSONB  NOT NULL DEFAULT '{}',
	source     TEXT   NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- One subscriber per address key in a list: an import updates the row of
-- a key it finds.
CREATE UNIQUE INDEX subscribers_key ON subscribers (list_id, "key");
CREATE INDEX subscribers_list ON subscribers (list_id, id);

-- Who may sign in to the web app, their sessions, the API tokens and the
-- app's settings. No secret in clear: a password hash (PHC string), the
-- SHA-256 (hex) of session and token values, sealed settings values.
CREATE TABLE users (
	id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email         TEXT   NOT NULL,
	password_hash TEXT   NOT NULL,
	created_at    BIGINT NOT NULL
);

-- One account per address, whatever its case.
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE sessions (
	id         TEXT   PRIMARY KEY,
	user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_tokens (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name       TEXT   NOT NULL UNIQUE,
	hash       TEXT   NOT NULL UNIQUE,
	created_at BIGINT NOT NULL,
	last_used  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE settings (
	"key" TEXT  PRIMARY KEY,
	value BYTEA NOT NULL
);

-- Messages of the bounce mailbox that could not be read as a bounce or a
-- complaint, or matched to no delivery, kept for a person to look at.
CREATE TABLE bounce_reviews (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	mailbox    TEXT   NOT NULL,
	uid        TEXT   NOT NULL,
	reason     TEXT   NOT NULL DEFAULT '',
	subject    TEXT   NOT NULL DEFAULT '',
	sender     TEXT   NOT NULL DEFAULT '',
	data       BYTEA  NOT NULL,
	created_at BIGINT NOT NULL,
	UNIQUE (mailbox, uid)
);

-- Messages of a POP3 bounce mailbox already processed, by their UIDL.
CREATE TABLE mailbox_seen (
	mailbox    TEXT   NOT NULL,
	uid        TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (mailbox, uid)
);
