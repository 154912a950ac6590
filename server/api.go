package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/iotcop/iotcop/baseline"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/store"
)

// secretKey matches evidence keys whose values viewers must not see.
// Reports store secrets as plain text when made with --show-secrets, and
// the JSON no longer says which values were finding.Secret, so the names
// decide (conservatively).
var secretKey = regexp.MustCompile(`(?i)pass|secret|key|token|hash|credential|community|psk|cookie|session`)

// redactEvidence returns evidence with secret-looking values redacted the
// way finding.Secret is.
func redactEvidence(ev map[string]any) map[string]any {
	if ev == nil {
		return nil
	}
	out := make(map[string]any, len(ev))
	for k, v := range ev {
		switch t := v.(type) {
		case map[string]any:
			out[k] = redactEvidence(t)
		default:
			if secretKey.MatchString(k) {
				out[k] = finding.Secret(fmt.Sprint(v)).Redacted()
			} else {
				out[k] = v
			}
		}
	}
	return out
}

// redactReport redacts the evidence of every finding of a raw report.
func redactReport(body []byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	if fs, ok := doc["findings"].([]any); ok {
		for _, f := range fs {
			if fm, ok := f.(map[string]any); ok {
				if ev, ok := fm["evidence"].(map[string]any); ok {
					fm["evidence"] = redactEvidence(ev)
				}
			}
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

func (s *Server) apiImport(w http.ResponseWriter, r *http.Request, p principal) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, store.MaxReportBytes))
	if err != nil {
		s.metrics.importFailures.Add(1)
		writeError(w, http.StatusRequestEntityTooLarge, "report too large or unreadable")
		return
	}
	res, code, err := s.importReport(r, p, body)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, code, res)
}

// importReport stores body for p and says which status answers it.
func (s *Server) importReport(r *http.Request, p principal, body []byte) (store.ImportResult, int, error) {
	res, err := s.st.Import(r.Context(), body, p.name())
	if err != nil {
		s.metrics.importFailures.Add(1)
		if errors.Is(err, store.ErrInvalidReport) {
			return res, http.StatusBadRequest, err
		}
		s.log.Error("import", "err", err)
		return res, http.StatusInternalServerError, errors.New("import failed")
	}
	code := http.StatusCreated
	if res.Duplicate {
		s.metrics.duplicates.Add(1)
		code = http.StatusOK
	} else {
		s.metrics.imports.Add(1)
	}
	s.audit(r.Context(), p.name(), "report-import",
		fmt.Sprintf("report %d sha256 %s devices %d findings %d duplicate %t", res.ReportID, res.SHA256, res.Devices, res.Findings, res.Duplicate), clientIP(r))
	return res, code, nil
}

func (s *Server) apiOverview(w http.ResponseWriter, r *http.Request, _ principal) {
	o, err := s.st.Overview(r.Context(), s.pstiRoutes)
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// maxDevicePage bounds ?limit= of the device list.
const maxDevicePage = 10000

func (s *Server) apiDevices(w http.ResponseWriter, r *http.Request, _ principal) {
	// Without ?limit the whole inventory, as always; with it a page, and
	// "next" (when there may be more) is the ?after= of the following one.
	q := r.URL.Query()
	if q.Get("limit") == "" {
		ds, err := s.st.Devices(r.Context())
		if err != nil {
			s.internal(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"devices": ds})
		return
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 || limit > maxDevicePage {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a whole number from 1 to %d", maxDevicePage))
		return
	}
	ds, err := s.st.DevicePage(r.Context(), q.Get("after"), limit)
	if err != nil {
		s.internal(w, err)
		return
	}
	out := map[string]any{"devices": ds}
	if len(ds) == limit {
		out["next"] = ds[len(ds)-1].Address
	}
	writeJSON(w, http.StatusOK, out)
}

// DeviceDetail is the answer of GET /api/v1/devices/{address}.
type DeviceDetail struct {
	Device  store.Device         `json:"device"`
	History []store.HistoryEntry `json:"history"`
}

func (s *Server) apiDevice(w http.ResponseWriter, r *http.Request, _ principal) {
	addr := r.PathValue("address")
	d, err := s.st.Device(r.Context(), addr)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such device")
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	h, err := s.st.DeviceHistory(r.Context(), addr)
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, DeviceDetail{Device: d, History: h})
}

// deviceDiff compares two reports of a device (ids from and to; by
// default the last two of its history).
func (s *Server) deviceDiff(r *http.Request, addr string, p principal) (*baseline.Diff, int, error) {
	hist, err := s.st.DeviceHistory(r.Context(), addr)
	if errors.Is(err, store.ErrNotFound) {
		return nil, http.StatusNotFound, errors.New("no such device")
	}
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	from, to, err := diffIDs(r, hist)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	old, err := s.st.DeviceReport(r.Context(), addr, from)
	if err != nil {
		return nil, http.StatusNotFound, fmt.Errorf("report %d is not in the history of %s", from, addr)
	}
	cur, err := s.st.DeviceReport(r.Context(), addr, to)
	if err != nil {
		return nil, http.StatusNotFound, fmt.Errorf("report %d is not in the history of %s", to, addr)
	}
	d := baseline.Compare(old, cur)
	d.Old.File, d.New.File = fmt.Sprintf("report %d", from), fmt.Sprintf("report %d", to)
	if !p.seesSecrets() {
		for i := range d.NewFindings {
			d.NewFindings[i].Evidence = redactEvidence(d.NewFindings[i].Evidence)
		}
		for i := range d.Fixed {
			d.Fixed[i].Evidence = redactEvidence(d.Fixed[i].Evidence)
		}
		for i := range d.Unchanged {
			d.Unchanged[i].Evidence = redactEvidence(d.Unchanged[i].Evidence)
		}
	}
	return d, http.StatusOK, nil
}

func diffIDs(r *http.Request, hist []store.HistoryEntry) (int64, int64, error) {
	parse := func(name string, def int64) (int64, error) {
		v := r.URL.Query().Get(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: not a report id", name)
		}
		return n, nil
	}
	var defFrom, defTo int64
	switch n := len(hist); {
	case n >= 2:
		defFrom, defTo = hist[n-2].ReportID, hist[n-1].ReportID
	case n == 1:
		defFrom, defTo = hist[0].ReportID, hist[0].ReportID
	}
	from, err := parse("from", defFrom)
	if err != nil {
		return 0, 0, err
	}
	to, err := parse("to", defTo)
	return from, to, err
}

func (s *Server) apiDiff(w http.ResponseWriter, r *http.Request, p principal) {
	d, code, err := s.deviceDiff(r, r.PathValue("address"), p)
	if err != nil {
		s.fail(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// findingFilter reads the filters of the findings list from the query.
func findingFilter(r *http.Request) (store.FindingFilter, error) {
	q := r.URL.Query()
	f := store.FindingFilter{Check: q.Get("check"), Severity: q.Get("severity"), Provision: q.Get("provision"), Device: q.Get("device")}
	if f.Severity != "" {
		if _, err := finding.ParseSeverity(f.Severity); err != nil {
			return f, err
		}
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if t, err = time.Parse("2006-01-02", v); err != nil {
				return f, fmt.Errorf("since: want RFC 3339 time or YYYY-MM-DD")
			}
		}
		f.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, fmt.Errorf("limit: want a positive number")
		}
		f.Limit = n
	}
	return f, nil
}

func (s *Server) findings(r *http.Request, p principal) ([]store.StoredFinding, store.FindingFilter, error) {
	flt, err := findingFilter(r)
	if err != nil {
		return nil, flt, err
	}
	fs, err := s.st.Findings(r.Context(), flt)
	if err != nil {
		return nil, flt, err
	}
	if !p.seesSecrets() {
		for i := range fs {
			fs[i].Evidence = redactEvidence(fs[i].Evidence)
		}
	}
	return fs, flt, nil
}

func (s *Server) apiFindings(w http.ResponseWriter, r *http.Request, p principal) {
	if _, err := findingFilter(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	fs, _, err := s.findings(r, p)
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"findings": fs})
}

func (s *Server) apiReport(w http.ResponseWriter, r *http.Request, p principal) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "not a report id")
		return
	}
	body, err := s.st.ReportBody(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such report")
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	if !p.seesSecrets() {
		if body, err = redactReport(body); err != nil {
			s.internal(w, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// TokenResponse shows a new token's secret, once.
type TokenResponse struct {
	Token  string   `json:"token"`
	ID     int64    `json:"id"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

func (s *Server) apiCreateToken(w http.ResponseWriter, r *http.Request, p principal) {
	var req TokenRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "want JSON {\"name\": …, \"scopes\": [\"read\", \"import\"]}")
		return
	}
	sort.Strings(req.Scopes)
	secret, tok, err := s.createToken(r.Context(), p, req.Name, req.Scopes, clientIP(r))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, TokenResponse{Token: secret, ID: tok.ID, Name: tok.Name, Scopes: tok.Scopes})
}

func (s *Server) internal(w http.ResponseWriter, err error) {
	s.log.Error("internal error", "err", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

// fail answers an API request that failed with code: the error's text for
// the client's own mistakes, and for a server fault only "internal error"
// (the cause goes to the log, not to the client).
func (s *Server) fail(w http.ResponseWriter, code int, err error) {
	if code == http.StatusInternalServerError {
		s.internal(w, err)
		return
	}
	writeError(w, code, err.Error())
}

// formatEvidence renders evidence as "key: value" lines, keys sorted.
func formatEvidence(ev map[string]any) string {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		v := ev[k]
		if m, ok := v.(map[string]any); ok {
			fmt.Fprintf(&b, "%s: {%s}", k, formatEvidence(m))
			continue
		}
		fmt.Fprintf(&b, "%s: %v", k, v)
	}
	return b.String()
}
