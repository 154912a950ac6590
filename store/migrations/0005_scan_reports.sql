-- Fleet service schema, version 5: a shard may store several reports (the
-- service stores one assessed report per device, so each device's history
-- carries its own verdicts); scan_reports lists them all. scan_shards keeps
-- one row per shard (exactly-once) with its first report.
CREATE TABLE scan_reports (
	scan_id   INTEGER NOT NULL REFERENCES scans(id),
	shard     INTEGER NOT NULL,
	report_id INTEGER NOT NULL REFERENCES reports(id),
	PRIMARY KEY (scan_id, report_id)
);
INSERT INTO scan_reports (scan_id, shard, report_id) SELECT scan_id, shard, report_id FROM scan_shards;
