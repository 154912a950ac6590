-- Fleet service schema, version 6: live progress inside running shards.
-- Workers report the hosts a shard has finished while it runs; the row goes
-- when the shard's results are stored (a retried shard starts again from 0).
CREATE TABLE shard_progress (
	scan_id    INTEGER NOT NULL REFERENCES scans(id),
	shard      INTEGER NOT NULL,
	hosts_done INTEGER NOT NULL,
	worker     TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (scan_id, shard)
);
