-- Fleet service schema, version 2: scans and firmware analyses run as jobs
-- (the queue itself is River's, in its own tables), firmware uploads and
-- rescan schedules.
CREATE TABLE scans (
	id           INTEGER PRIMARY KEY,
	kind         TEXT NOT NULL CHECK (kind IN ('scan', 'firmware')),
	-- what was asked: the target expression, or the firmware file name
	targets      TEXT NOT NULL,
	-- the request as JSON (ports, checks, …), kept to repeat it
	request      TEXT NOT NULL DEFAULT '{}',
	status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
	shards_total INTEGER NOT NULL,
	shards_done  INTEGER NOT NULL DEFAULT 0,
	hosts_total  INTEGER NOT NULL DEFAULT 0,
	hosts_done   INTEGER NOT NULL DEFAULT 0,
	devices      INTEGER NOT NULL DEFAULT 0,
	findings     INTEGER NOT NULL DEFAULT 0,
	error        TEXT NOT NULL DEFAULT '',
	created_by   TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	finished_at  TEXT NOT NULL DEFAULT '',
	schedule_id  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX scans_created ON scans(created_at);

-- One row per finished shard. The primary key is what makes storing a
-- shard's results idempotent: a shard retried after its first run already
-- committed (a worker that stalled, was presumed dead, then woke) finds
-- its row and stores nothing.
CREATE TABLE scan_shards (
	scan_id     INTEGER NOT NULL REFERENCES scans(id),
	shard       INTEGER NOT NULL,
	report_id   INTEGER NOT NULL REFERENCES reports(id),
	hosts       INTEGER NOT NULL,
	worker      TEXT NOT NULL,
	attempt     INTEGER NOT NULL,
	finished_at TEXT NOT NULL,
	PRIMARY KEY (scan_id, shard)
);

CREATE TABLE uploads (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	sha256     TEXT NOT NULL,
	size       INTEGER NOT NULL,
	body       BLOB NOT NULL,
	created_by TEXT NOT NULL,
	created_at TEXT NOT NULL
);

CREATE TABLE schedules (
	id            INTEGER PRIMARY KEY,
	name          TEXT NOT NULL,
	targets       TEXT NOT NULL,
	request       TEXT NOT NULL DEFAULT '{}',
	every_seconds INTEGER NOT NULL CHECK (every_seconds >= 60),
	next_run      TEXT NOT NULL,
	last_scan     INTEGER NOT NULL DEFAULT 0,
	created_by    TEXT NOT NULL,
	created_at    TEXT NOT NULL
);
