package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/iotcop/iotcop/baseline"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/report"
)

// MaxReportBytes caps the size of an imported report.
const MaxReportBytes = 64 << 20

// ErrInvalidReport wraps every reason a report is refused at import.
var ErrInvalidReport = errors.New("invalid report")

// ImportResult says what an import stored.
type ImportResult struct {
	ReportID int64  `json:"report_id"`
	SHA256   string `json:"sha256"`
	// Duplicate is true when the same report body was imported before;
	// nothing new was stored.
	Duplicate bool `json:"duplicate"`
	Devices   int  `json:"devices"`
	Findings  int  `json:"findings"`
}

// Import stores a JSON report after checking it against the report
// contract. The same body imported twice is stored once (keyed by its
// SHA-256); the second import returns the first one's id with Duplicate set.
// by names who imported it, for the record.
func (s *Store) Import(ctx context.Context, body []byte, by string) (ImportResult, error) {
	// Validation is the expensive part: done before the transaction so the
	// write lock is held only while rows are written.
	rep, res, err := prepareImport(body)
	if err != nil {
		return ImportResult{}, err
	}
	err = s.InTx(ctx, func(tx *Tx) error { return s.storeImport(ctx, tx, rep, body, by, &res) })
	if err != nil {
		return ImportResult{}, fmt.Errorf("import report %s: %w", res.SHA256[:12], err)
	}
	if !res.Duplicate {
		s.refreshStats(ctx, res.Findings)
	}
	return res, nil
}

// importTx imports a report inside tx (validated and idempotent by
// content hash, like Import).
func (s *Store) importTx(ctx context.Context, tx *Tx, body []byte, by string) (ImportResult, error) {
	rep, res, err := prepareImport(body)
	if err != nil {
		return ImportResult{}, err
	}
	if err := s.storeImport(ctx, tx, rep, body, by, &res); err != nil {
		return ImportResult{}, fmt.Errorf("import report %s: %w", res.SHA256[:12], err)
	}
	return res, nil
}

// prepareImport checks a body against the report contract and hashes it.
func prepareImport(body []byte) (*finding.Report, ImportResult, error) {
	if len(body) > MaxReportBytes {
		return nil, ImportResult{}, fmt.Errorf("%w: larger than %d bytes", ErrInvalidReport, MaxReportBytes)
	}
	if err := report.Validate(body); err != nil {
		return nil, ImportResult{}, fmt.Errorf("%w: %v", ErrInvalidReport, err)
	}
	rep, err := baseline.Parse(body)
	if err != nil {
		return nil, ImportResult{}, fmt.Errorf("%w: %v", ErrInvalidReport, err)
	}
	sum := sha256.Sum256(body)
	return rep, ImportResult{SHA256: hex.EncodeToString(sum[:])}, nil
}

// storeImport writes a prepared report in tx unless the same body is
// already stored.
func (s *Store) storeImport(ctx context.Context, tx *Tx, rep *finding.Report, body []byte, by string, res *ImportResult) error {
	err := tx.QueryRowContext(ctx, "SELECT id, findings FROM reports WHERE sha256 = ?", res.SHA256).Scan(&res.ReportID, &res.Findings)
	if err == nil {
		res.Duplicate = true
		return tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM device_reports WHERE report_id = ?", res.ReportID).Scan(&res.Devices)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return s.insertReport(ctx, tx, rep, body, by, res)
}

// DeviceOf says which device a finding belongs to: its host, or for a
// firmware finding the image ("firmware:NAME") when the report analysed one.
func DeviceOf(rep *finding.Report, f finding.Finding) string {
	if f.Host != "" {
		return f.Host
	}
	if len(rep.Firmware) > 0 {
		return "firmware:" + path.Base(strings.ReplaceAll(rep.Firmware[0].Image, `\`, "/"))
	}
	return "unknown"
}

func (s *Store) insertReport(ctx context.Context, tx *Tx, rep *finding.Report, body []byte, by string, res *ImportResult) error {
	started := formatTime(rep.StartedAt)
	err := tx.QueryRowContext(ctx, `INSERT INTO reports (sha256, imported_at, imported_by, tool_name, tool_version,
		started_at, finished_at, findings, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		res.SHA256, s.stamp(), by, rep.Tool.Name, rep.Tool.Version, started, formatTime(rep.FinishedAt), len(rep.Findings), body).Scan(&res.ReportID)
	if err != nil {
		return err
	}
	res.Findings = len(rep.Findings)

	// Devices: every listed device, plus every device a finding names.
	type info struct{ vendor, model, firmware string }
	devs := map[string]info{}
	var order []string
	add := func(addr string, in info) {
		if _, ok := devs[addr]; !ok {
			order = append(order, addr)
		}
		devs[addr] = in
	}
	for _, d := range rep.Devices {
		var in info
		for _, svc := range d.Services {
			if in.vendor == "" {
				in.vendor = svc.Vendor
			}
			if in.model == "" && svc.Product != "" {
				in.model, in.firmware = svc.Product, svc.Version
			}
		}
		add(d.Address, in)
	}
	for _, f := range rep.Findings {
		if dev := DeviceOf(rep, f); devs[dev] == (info{}) {
			if _, ok := devs[dev]; !ok {
				in := info{}
				if strings.HasPrefix(dev, "firmware:") {
					in.firmware = strings.TrimPrefix(dev, "firmware:")
				}
				add(dev, in)
			}
		}
	}
	for _, addr := range order {
		in := devs[addr]
		// A newer report updates what is known; an older one only widens
		// first_seen.
		_, err := tx.ExecContext(ctx, `INSERT INTO devices (address, vendor, model, firmware, first_seen, last_seen)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT(address) DO UPDATE SET
				vendor   = CASE WHEN excluded.last_seen >= devices.last_seen AND excluded.vendor <> '' THEN excluded.vendor ELSE devices.vendor END,
				model    = CASE WHEN excluded.last_seen >= devices.last_seen AND excluded.model <> '' THEN excluded.model ELSE devices.model END,
				firmware = CASE WHEN excluded.last_seen >= devices.last_seen AND excluded.firmware <> '' THEN excluded.firmware ELSE devices.firmware END,
				first_seen = `+tx.Dialect.least("devices.first_seen", "excluded.first_seen")+`,
				last_seen  = `+tx.Dialect.greatest("devices.last_seen", "excluded.last_seen"),
			addr, in.vendor, in.model, in.firmware, started, started)
		if err != nil {
			return fmt.Errorf("store device %s: %w", addr, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO device_reports (device, report_id, started_at) VALUES (?, ?, ?)",
			addr, res.ReportID, started); err != nil {
			return fmt.Errorf("link device %s: %w", addr, err)
		}
	}
	res.Devices = len(order)
	// Each device's latest report may now be this one (or, for an older
	// report imported late, stays what it was).
	for _, addr := range order {
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET latest_report = COALESCE((SELECT dr.report_id FROM device_reports dr
			WHERE dr.device = ? ORDER BY dr.started_at DESC, dr.report_id DESC LIMIT 1), 0) WHERE address = ?`, addr, addr); err != nil {
			return fmt.Errorf("update latest report of %s: %w", addr, err)
		}
	}

	// Findings go in as multi-row INSERTs: one round trip per batch
	// instead of per finding (on PostgreSQL that is most of an import).
	const cols = 15
	const batch = 200
	var q strings.Builder
	args := make([]any, 0, cols*batch)
	flush := func(rows int) error {
		if rows == 0 {
			return nil
		}
		q.Reset()
		q.WriteString(`INSERT INTO findings (report_id, device, check_id, severity, severity_rank,
		provisions, title, finding_key, host, port, transport, protocol, path, evidence, remediation) VALUES `)
		for i := range rows {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("store findings: %w", err)
		}
		args = args[:0]
		return nil
	}
	rows := 0
	for _, f := range rep.Findings {
		ev, err := json.Marshal(f.Evidence)
		if err != nil {
			return fmt.Errorf("encode evidence: %w", err)
		}
		if f.Evidence == nil {
			ev = []byte("{}")
		}
		args = append(args, res.ReportID, DeviceOf(rep, f), f.Check, f.Severity.String(), int(f.Severity),
			joinProvisions(f.Provisions), f.Title, f.Key(), f.Host, f.Port, f.Transport, f.Protocol, f.Path, string(ev), f.Remediation)
		if rows++; rows == batch {
			if err := flush(rows); err != nil {
				return err
			}
			rows = 0
		}
	}
	if err := flush(rows); err != nil {
		return err
	}
	for _, v := range rep.Verdicts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO verdicts (report_id, provision, edition, verdict, psti, title)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (report_id, provision) DO UPDATE SET
			edition = excluded.edition, verdict = excluded.verdict, psti = excluded.psti, title = excluded.title`,
			res.ReportID, v.Provision, v.Edition, v.Verdict, v.PSTI, v.Title); err != nil {
			return fmt.Errorf("store verdict %s: %w", v.Provision, err)
		}
	}
	return nil
}

func joinProvisions(p []string) string {
	if len(p) == 0 {
		return ","
	}
	return "," + strings.Join(p, ",") + ","
}

func splitProvisions(s string) []string {
	s = strings.Trim(s, ",")
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}
