-- Fleet service schema, version 4: each device keeps the id of its latest
-- report (by start time, then id), maintained by every import, so "the
-- fleet's current state" is a join instead of a sorted subquery per row;
-- and the indexes the current-state queries use.
ALTER TABLE devices ADD COLUMN latest_report INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET latest_report = COALESCE((SELECT dr.report_id FROM device_reports dr
	WHERE dr.device = devices.address ORDER BY dr.started_at DESC, dr.report_id DESC LIMIT 1), 0);
CREATE INDEX findings_device_report ON findings(device, report_id);
CREATE INDEX device_reports_latest ON device_reports(device, started_at, report_id);
