-- Fleet service schema, version 7: the findings list's order as an index,
-- so a page of the most severe current findings is read in order and stops
-- at its limit instead of sorting every current finding.
CREATE INDEX findings_order ON findings(severity_rank DESC, device, check_id, port, path, title, id);
