package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/iotcop/iotcop/finding"
)

// Device is one device of the inventory.
type Device struct {
	Address   string    `json:"address"`
	Vendor    string    `json:"vendor"`
	Model     string    `json:"model"`
	Firmware  string    `json:"firmware"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Reports counts the reports the device appears in.
	Reports int `json:"reports"`
	// Findings counts findings of the device's latest report.
	Findings int `json:"findings"`
}

// Devices lists the inventory, by address.
func (s *Store) Devices(ctx context.Context) ([]Device, error) {
	return s.devices(ctx, "", "", 0)
}

// DevicePage lists at most limit devices whose address sorts after
// after, by address: the inventory a page at a time (keyset pagination,
// so a page costs the same however far into a large fleet it is).
func (s *Store) DevicePage(ctx context.Context, after string, limit int) ([]Device, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("list devices: page size %d must be positive", limit)
	}
	return s.devices(ctx, "", after, limit)
}

// Device returns one device.
func (s *Store) Device(ctx context.Context, addr string) (Device, error) {
	ds, err := s.devices(ctx, addr, "", 0)
	if err != nil {
		return Device{}, err
	}
	if len(ds) == 0 {
		return Device{}, fmt.Errorf("device %s: %w", addr, ErrNotFound)
	}
	return ds[0], nil
}

func (s *Store) devices(ctx context.Context, addr, after string, limit int) ([]Device, error) {
	q := `SELECT d.address, d.vendor, d.model, d.firmware, d.first_seen, d.last_seen,
		(SELECT COUNT(*) FROM device_reports dr WHERE dr.device = d.address),
		(SELECT COUNT(*) FROM findings f WHERE f.device = d.address AND f.report_id = d.latest_report)
		FROM devices d`
	var args []any
	switch {
	case addr != "":
		q += " WHERE d.address = ?"
		args = append(args, addr)
	case after != "":
		q += " WHERE d.address > ?"
		args = append(args, after)
	}
	q += " ORDER BY d.address"
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	out := []Device{}
	for rows.Next() {
		var d Device
		var first, last string
		if err := rows.Scan(&d.Address, &d.Vendor, &d.Model, &d.Firmware, &first, &last, &d.Reports, &d.Findings); err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		d.FirstSeen, d.LastSeen = parseTime(first), parseTime(last)
		out = append(out, d)
	}
	return out, rows.Err()
}

// HistoryEntry is one report of a device's history.
type HistoryEntry struct {
	ReportID    int64          `json:"report_id"`
	StartedAt   time.Time      `json:"started_at"`
	ImportedAt  time.Time      `json:"imported_at"`
	ToolVersion string         `json:"tool_version"`
	Findings    int            `json:"findings"`
	BySeverity  map[string]int `json:"by_severity"`
	// Verdicts counts the report's verdicts by state (empty without an
	// assessment).
	Verdicts map[string]int `json:"verdicts"`
}

// DeviceHistory lists the reports a device appears in, oldest first, with
// its finding counts and the verdict tally of each.
func (s *Store) DeviceHistory(ctx context.Context, addr string) ([]HistoryEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT r.id, dr.started_at, r.imported_at, r.tool_version
		FROM device_reports dr JOIN reports r ON r.id = dr.report_id
		WHERE dr.device = ? ORDER BY dr.started_at, r.id`, addr)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", addr, err)
	}
	var out []HistoryEntry
	for rows.Next() {
		var h HistoryEntry
		var started, imported string
		if err := rows.Scan(&h.ReportID, &started, &imported, &h.ToolVersion); err != nil {
			rows.Close()
			return nil, fmt.Errorf("history of %s: %w", addr, err)
		}
		h.StartedAt, h.ImportedAt = parseTime(started), parseTime(imported)
		h.BySeverity, h.Verdicts = map[string]int{}, map[string]int{}
		out = append(out, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		h := &out[i]
		if err := s.tally(ctx, &h.BySeverity, "SELECT severity, COUNT(*) FROM findings WHERE report_id = ? AND device = ? GROUP BY severity", h.ReportID, addr); err != nil {
			return nil, err
		}
		for _, n := range h.BySeverity {
			h.Findings += n
		}
		if err := s.tally(ctx, &h.Verdicts, "SELECT verdict, COUNT(*) FROM verdicts WHERE report_id = ? GROUP BY verdict", h.ReportID); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		if _, err := s.Device(ctx, addr); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) tally(ctx context.Context, into *map[string]int, q string, args ...any) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		(*into)[k] = n
	}
	return rows.Err()
}

// ReportBody returns the stored JSON of a report, byte for byte as imported.
func (s *Store) ReportBody(ctx context.Context, id int64) ([]byte, error) {
	var body []byte
	err := s.db.QueryRowContext(ctx, "SELECT body FROM reports WHERE id = ?", id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("report %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read report %d: %w", id, err)
	}
	return body, nil
}

// DeviceReport returns the report with the given id restricted to one
// device: its entry in devices and the findings DeviceOf assigns to it.
// Verdicts are kept (they are per report).
func (s *Store) DeviceReport(ctx context.Context, addr string, id int64) (*finding.Report, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM device_reports WHERE device = ? AND report_id = ?", addr, id).Scan(&n); err != nil {
		return nil, fmt.Errorf("report %d of %s: %w", id, addr, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("report %d of %s: %w", id, addr, ErrNotFound)
	}
	body, err := s.ReportBody(ctx, id)
	if err != nil {
		return nil, err
	}
	var rep finding.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("decode report %d: %w", id, err)
	}
	out := rep
	out.Devices, out.Findings = nil, nil
	for _, d := range rep.Devices {
		if d.Address == addr {
			out.Devices = append(out.Devices, d)
		}
	}
	for _, f := range rep.Findings {
		if DeviceOf(&rep, f) == addr {
			out.Findings = append(out.Findings, f)
		}
	}
	out.Finalize()
	return &out, nil
}

// FindingFilter selects findings. Empty fields select everything.
type FindingFilter struct {
	Check    string
	Severity string // exact severity name
	// Provision selects findings that bear on one provision ("5.1-1").
	Provision string
	Device    string
	// Since keeps findings new since then: not in any report of the same
	// device that started before it.
	Since time.Time
	// Scan, when set, selects the findings of that scan's stored shards
	// instead of each device's latest report.
	Scan int64
	// Limit caps the result (default and maximum 1000).
	Limit int
}

// StoredFinding is a finding of a device's latest report.
type StoredFinding struct {
	ID         int64            `json:"id"`
	ReportID   int64            `json:"report_id"`
	Device     string           `json:"device"`
	Check      string           `json:"check"`
	Severity   finding.Severity `json:"severity"`
	Provisions []string         `json:"provisions"`
	Title      string           `json:"title"`
	Key        string           `json:"key"`
	Host       string           `json:"host,omitempty"`
	Port       int              `json:"port,omitempty"`
	Transport  string           `json:"transport,omitempty"`
	Protocol   string           `json:"protocol,omitempty"`
	Path       string           `json:"path,omitempty"`
	Evidence   map[string]any   `json:"evidence"`
	// FirstSeen is when the device's reports first show this finding.
	FirstSeen time.Time `json:"first_seen"`
}

// Findings lists the current findings (those of each device's latest
// report) that match the filter, most severe first.
func (s *Store) Findings(ctx context.Context, flt FindingFilter) ([]StoredFinding, error) {
	// The page is chosen first (filter, order, limit) and first_seen is
	// computed for its rows only; with Since, first_seen is the filter, so
	// it is computed for every candidate.
	const cols = `f.id, f.report_id, f.device, f.check_id, f.severity_rank, f.provisions, f.title, f.finding_key,
		f.host, f.port, f.transport, f.protocol, f.path, f.evidence`
	firstSeen := func(f string) string {
		return `(SELECT MIN(dr.started_at) FROM findings f2 JOIN device_reports dr ON dr.report_id = f2.report_id AND dr.device = f2.device
			WHERE f2.device = ` + f + `.device AND f2.finding_key = ` + f + `.finding_key)`
	}
	const order = " ORDER BY severity_rank DESC, device, check_id, port, path, title, id"
	from := "FROM findings f"
	var where []string
	var args []any
	if flt.Scan != 0 {
		where = append(where, "f.report_id IN (SELECT report_id FROM scan_reports WHERE scan_id = ?)")
		args = append(args, flt.Scan)
	} else {
		from += " JOIN devices dl ON dl.address = f.device AND dl.latest_report = f.report_id"
	}
	if flt.Check != "" {
		where = append(where, "f.check_id = ?")
		args = append(args, flt.Check)
	}
	if flt.Severity != "" {
		sev, err := finding.ParseSeverity(flt.Severity)
		if err != nil {
			return nil, fmt.Errorf("filter findings: %w", err)
		}
		where = append(where, "f.severity_rank = ?")
		args = append(args, int(sev))
	}
	if flt.Provision != "" {
		// Provision ids hold digits, dots and dashes only, so the LIKE
		// pattern needs no escaping; checked to keep it that way.
		if strings.ContainsAny(flt.Provision, `%_\,`) {
			return nil, fmt.Errorf("filter findings: provision %q is not a provision id", flt.Provision)
		}
		where = append(where, "f.provisions LIKE ?")
		args = append(args, "%,"+flt.Provision+",%")
	}
	if flt.Device != "" {
		where = append(where, "f.device = ?")
		args = append(args, flt.Device)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	limit := flt.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var q string
	if flt.Since.IsZero() {
		q = "SELECT sub.*, " + firstSeen("sub") + " AS first_seen FROM (SELECT " + cols + " " + from + cond + order + " LIMIT ?) sub" + order
		args = append(args, limit)
	} else {
		// (PostgreSQL does not let WHERE name a SELECT alias: filter on
		// first_seen from an outer query.)
		q = "SELECT * FROM (SELECT " + cols + ", " + firstSeen("f") + " AS first_seen " + from + cond + ") sub WHERE first_seen >= ?" + order + " LIMIT ?"
		args = append(args, formatTime(flt.Since), limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list findings: %w", err)
	}
	defer rows.Close()
	out := []StoredFinding{}
	for rows.Next() {
		var f StoredFinding
		var rank int
		var prov, ev, first string
		if err := rows.Scan(&f.ID, &f.ReportID, &f.Device, &f.Check, &rank, &prov, &f.Title, &f.Key,
			&f.Host, &f.Port, &f.Transport, &f.Protocol, &f.Path, &ev, &first); err != nil {
			return nil, fmt.Errorf("list findings: %w", err)
		}
		f.Severity = finding.Severity(rank)
		f.Provisions = splitProvisions(prov)
		if err := json.Unmarshal([]byte(ev), &f.Evidence); err != nil {
			return nil, fmt.Errorf("decode evidence of finding %d: %w", f.ID, err)
		}
		f.FirstSeen = parseTime(first)
		out = append(out, f)
	}
	return out, rows.Err()
}

// ProvisionStatus is the fleet's standing on one provision.
type ProvisionStatus struct {
	Provision string `json:"provision"`
	PSTI      int    `json:"psti,omitempty"`
	// Failing lists the devices whose latest report fails the provision:
	// by its verdict when the report has verdicts, else by a finding that
	// names the provision.
	Failing []string `json:"failing"`
	// FromVerdicts counts the failing devices decided by a verdict.
	FromVerdicts int `json:"from_verdicts"`
}

// Overview is the fleet at a glance.
type Overview struct {
	Devices    int               `json:"devices"`
	Reports    int               `json:"reports"`
	Findings   int               `json:"findings"`
	BySeverity map[string]int    `json:"by_severity"`
	Provisions []ProvisionStatus `json:"provisions"`
	// PSTI lists, per UK PSTI requirement, the devices failing a provision
	// that is a route to it.
	PSTI map[int][]string `json:"psti"`
}

// Overview counts the fleet's current state: every device's latest report.
// routes maps a provision to the UK PSTI requirement it is a route to (the
// EN 303 645 catalogue's); verdicts carry their own, and routes supplies it
// for devices judged by findings alone. nil leaves those unmapped.
func (s *Store) Overview(ctx context.Context, routes map[string]int) (Overview, error) {
	o := Overview{BySeverity: map[string]int{}, PSTI: map[int][]string{}}
	if err := s.db.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM devices), (SELECT COUNT(*) FROM reports)").Scan(&o.Devices, &o.Reports); err != nil {
		return o, fmt.Errorf("overview: %w", err)
	}
	if err := s.tally(ctx, &o.BySeverity, `SELECT f.severity, COUNT(*) FROM findings f
		JOIN devices dl ON dl.address = f.device AND dl.latest_report = f.report_id GROUP BY f.severity`); err != nil {
		return o, err
	}
	for _, n := range o.BySeverity {
		o.Findings += n
	}
	failing := map[string]map[string]bool{} // provision → device set
	byVerdict := map[string]int{}
	psti := map[string]int{}
	mark := func(prov, dev string) {
		if failing[prov] == nil {
			failing[prov] = map[string]bool{}
		}
		failing[prov][dev] = true
	}
	// Verdicts of each device's latest report.
	rows, err := s.db.QueryContext(ctx, `SELECT d.address, v.provision, v.verdict, v.psti FROM devices d
		JOIN verdicts v ON v.report_id = d.latest_report`)
	if err != nil {
		return o, fmt.Errorf("overview verdicts: %w", err)
	}
	assessed := map[string]bool{}
	pstiFail := map[int]map[string]bool{}
	for rows.Next() {
		var dev, prov, verdict string
		var p int
		if err := rows.Scan(&dev, &prov, &verdict, &p); err != nil {
			rows.Close()
			return o, fmt.Errorf("overview verdicts: %w", err)
		}
		assessed[dev] = true
		if p != 0 {
			psti[prov] = p
		}
		if verdict == finding.VerdictFail {
			mark(prov, dev)
			byVerdict[prov]++
			if p != 0 {
				if pstiFail[p] == nil {
					pstiFail[p] = map[string]bool{}
				}
				pstiFail[p][dev] = true
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return o, err
	}
	// Findings for devices whose latest report has no verdicts.
	rows, err = s.db.QueryContext(ctx, `SELECT DISTINCT f.device, f.provisions FROM findings f
		JOIN devices dl ON dl.address = f.device AND dl.latest_report = f.report_id`)
	if err != nil {
		return o, fmt.Errorf("overview findings: %w", err)
	}
	for rows.Next() {
		var dev, prov string
		if err := rows.Scan(&dev, &prov); err != nil {
			rows.Close()
			return o, fmt.Errorf("overview findings: %w", err)
		}
		if assessed[dev] {
			continue
		}
		for _, p := range splitProvisions(prov) {
			mark(p, dev)
			if req := routes[p]; req != 0 {
				psti[p] = req
				if pstiFail[req] == nil {
					pstiFail[req] = map[string]bool{}
				}
				pstiFail[req][dev] = true
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return o, err
	}
	for prov, devs := range failing {
		ps := ProvisionStatus{Provision: prov, PSTI: psti[prov], FromVerdicts: byVerdict[prov], Failing: sortedKeys(devs)}
		o.Provisions = append(o.Provisions, ps)
	}
	sort.Slice(o.Provisions, func(i, j int) bool { return lessProvision(o.Provisions[i].Provision, o.Provisions[j].Provision) })
	for p, devs := range pstiFail {
		o.PSTI[p] = sortedKeys(devs)
	}
	return o, nil
}

// Failing returns the fleet's standing on one provision (an empty
// Failing list when no device fails it).
func (o Overview) Failing(provision string) ProvisionStatus {
	for _, p := range o.Provisions {
		if p.Provision == provision {
			return p
		}
	}
	return ProvisionStatus{Provision: provision, Failing: []string{}}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// lessProvision orders "5.1-1" before "5.1-2" before "5.10-1".
func lessProvision(a, b string) bool {
	pa, pb := strings.FieldsFunc(a, sep), strings.FieldsFunc(b, sep)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		var na, nb int
		_, ea := fmt.Sscan(pa[i], &na)
		_, eb := fmt.Sscan(pb[i], &nb)
		if ea == nil && eb == nil && na != nb {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

func sep(r rune) bool { return r == '.' || r == '-' }

// Counts are totals for metrics.
type Counts struct {
	Reports, Devices, Findings, Users, Tokens int
}

// Counts returns row totals.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM reports), (SELECT COUNT(*) FROM devices),
		(SELECT COUNT(*) FROM findings), (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM api_tokens)`).
		Scan(&c.Reports, &c.Devices, &c.Findings, &c.Users, &c.Tokens)
	if err != nil {
		return c, fmt.Errorf("count rows: %w", err)
	}
	return c, nil
}
