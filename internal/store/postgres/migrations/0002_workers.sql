-- 0002_workers: the workers of a fleet (mailout worker, serve with its
-- local worker), each one row, kept up to date by its heartbeat. A worker
-- that stopped cleanly has stopped_at set; one that died keeps its last
-- heartbeat, and is shown as gone once three intervals passed without one.
-- Times are Unix milliseconds, as everywhere else.
CREATE TABLE workers (
	id           TEXT     PRIMARY KEY, -- the lease owner: host:pid:random
	host         TEXT     NOT NULL,
	pid          INTEGER  NOT NULL,
	helo         TEXT     NOT NULL DEFAULT '',
	source_ip    TEXT     NOT NULL DEFAULT '',
	started_at   BIGINT   NOT NULL,
	heartbeat_at BIGINT   NOT NULL,
	interval_ms  BIGINT   NOT NULL,
	stopped_at   BIGINT   NOT NULL DEFAULT 0,
	campaigns    BIGINT[] NOT NULL DEFAULT '{}', -- the campaigns it runs now
	claimed      INTEGER  NOT NULL DEFAULT 0,    -- rows it holds (sending), at the heartbeat
	sent         BIGINT   NOT NULL DEFAULT 0,    -- attempts finished since it started
	rate         DOUBLE PRECISION NOT NULL DEFAULT 0 -- attempts per second over the last interval
);

-- A worker's heartbeat counts its rows, and lease renewal and its own
-- release find them, by owner.
CREATE INDEX deliveries_lease_owner ON deliveries (lease_owner, campaign_id) WHERE state = 'sending';
