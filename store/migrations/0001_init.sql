-- Fleet service schema, version 1. Times are UTC text in store.timeLayout
-- (fixed width, so text order is time order).
CREATE TABLE reports (
	id           INTEGER PRIMARY KEY,
	sha256       TEXT NOT NULL UNIQUE,
	imported_at  TEXT NOT NULL,
	imported_by  TEXT NOT NULL,
	tool_name    TEXT NOT NULL,
	tool_version TEXT NOT NULL,
	started_at   TEXT NOT NULL,
	finished_at  TEXT NOT NULL,
	findings     INTEGER NOT NULL,
	body         BLOB NOT NULL
);

CREATE TABLE devices (
	address    TEXT PRIMARY KEY,
	vendor     TEXT NOT NULL DEFAULT '',
	model      TEXT NOT NULL DEFAULT '',
	firmware   TEXT NOT NULL DEFAULT '',
	first_seen TEXT NOT NULL,
	last_seen  TEXT NOT NULL
);

CREATE TABLE device_reports (
	device     TEXT NOT NULL REFERENCES devices(address),
	report_id  INTEGER NOT NULL REFERENCES reports(id),
	started_at TEXT NOT NULL,
	PRIMARY KEY (device, report_id)
);
CREATE INDEX device_reports_report ON device_reports(report_id);

CREATE TABLE findings (
	id            INTEGER PRIMARY KEY,
	report_id     INTEGER NOT NULL REFERENCES reports(id),
	device        TEXT NOT NULL,
	check_id      TEXT NOT NULL,
	severity      TEXT NOT NULL,
	severity_rank INTEGER NOT NULL,
	-- provisions as ",5.1-1,5.1-2," so one LIKE finds one provision.
	provisions    TEXT NOT NULL,
	title         TEXT NOT NULL,
	finding_key   TEXT NOT NULL,
	host          TEXT NOT NULL DEFAULT '',
	port          INTEGER NOT NULL DEFAULT 0,
	transport     TEXT NOT NULL DEFAULT '',
	protocol      TEXT NOT NULL DEFAULT '',
	path          TEXT NOT NULL DEFAULT '',
	evidence      TEXT NOT NULL DEFAULT '{}',
	remediation   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX findings_report ON findings(report_id);
CREATE INDEX findings_device_key ON findings(device, finding_key);
CREATE INDEX findings_check ON findings(check_id);

CREATE TABLE verdicts (
	report_id INTEGER NOT NULL REFERENCES reports(id),
	provision TEXT NOT NULL,
	edition   TEXT NOT NULL,
	verdict   TEXT NOT NULL,
	psti      INTEGER NOT NULL DEFAULT 0,
	title     TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (report_id, provision)
);

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
	password_hash TEXT NOT NULL,
	created_at    TEXT NOT NULL
);

CREATE TABLE api_tokens (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	user_id    INTEGER NOT NULL REFERENCES users(id),
	hash       TEXT NOT NULL UNIQUE,
	scopes     TEXT NOT NULL,
	created_at TEXT NOT NULL
);

CREATE TABLE sessions (
	hash       TEXT PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users(id),
	csrf       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL
);

CREATE TABLE audit_log (
	id     INTEGER PRIMARY KEY,
	at     TEXT NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	detail TEXT NOT NULL DEFAULT '',
	remote TEXT NOT NULL DEFAULT ''
);
