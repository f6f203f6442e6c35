-- 0006_accounts: who may sign in to the web app, their browser sessions,
-- the API tokens, and the app's settings. Times are Unix milliseconds; 0
-- means "not set". No secret is kept in clear: users have a password hash
-- (PHC string), sessions and tokens only the SHA-256 (hex) of the value the
-- browser or client holds, and settings values that carry a password have
-- it sealed with the secret key (internal/secret) before they get here.

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	email         TEXT    NOT NULL,
	password_hash TEXT    NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT;

-- One account per address, whatever its case (ASCII case folding).
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE sessions (
	id         TEXT    PRIMARY KEY, -- SHA-256 hex of the cookie value
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_tokens (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE,
	hash       TEXT    NOT NULL UNIQUE, -- SHA-256 hex of the token
	created_at INTEGER NOT NULL,
	last_used  INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE settings (
	"key" TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;
