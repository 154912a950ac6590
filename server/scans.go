package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/iotcop/iotcop/jobs"
	"github.com/iotcop/iotcop/store"
)

// errNoQueue answers requests to start work on a server without a queue.
var errNoQueue = errors.New("no job queue configured: this server only keeps history")

// scanRefusal turns an error of the job queue into the status that answers
// it: a bad request, a target outside the scope policy, or a failure.
func scanRefusal(err error) int {
	var re jobs.RequestError
	switch {
	case errors.Is(err, jobs.ErrOutOfPolicy):
		return http.StatusForbidden
	case errors.As(err, &re):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// clip shortens user-given text for the audit log.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func describeRequest(req jobs.ScanRequest) string {
	d := fmt.Sprintf("targets %q", clip(req.Targets, 300))
	if len(req.Exclude) > 0 {
		d += fmt.Sprintf(" exclude %q", clip(strings.Join(req.Exclude, ","), 200))
	}
	if req.Ports != "" {
		d += fmt.Sprintf(" ports %q", clip(req.Ports, 200))
	}
	if len(req.Checks) > 0 {
		d += " checks " + clip(strings.Join(req.Checks, ","), 200)
	}
	if req.NoChecks {
		d += " no-checks"
	}
	if req.Aggressive {
		d += " aggressive"
	}
	return d
}

// startScan submits req for p, audits the start or the policy refusal, and
// says which status answers it.
func (s *Server) startScan(r *http.Request, p principal, req jobs.ScanRequest) (store.Scan, int, error) {
	if s.opts.Queue == nil {
		return store.Scan{}, http.StatusServiceUnavailable, errNoQueue
	}
	sc, err := s.opts.Queue.SubmitScan(r.Context(), req, p.name())
	if err != nil {
		code := scanRefusal(err)
		switch code {
		case http.StatusForbidden:
			s.metrics.policyRefused.Add(1)
			s.audit(r.Context(), p.name(), "scan-refused", describeRequest(req)+": "+err.Error(), clientIP(r))
		case http.StatusInternalServerError:
			s.log.Error("start scan", "err", err)
			err = errors.New("could not start the scan")
		}
		return store.Scan{}, code, err
	}
	s.metrics.scansStarted.Add(1)
	s.audit(r.Context(), p.name(), "scan-start", fmt.Sprintf("scan %d %s: %d hosts in %d shards",
		sc.ID, describeRequest(req), sc.HostsTotal, sc.ShardsTotal), clientIP(r))
	return sc, http.StatusAccepted, nil
}

// firmwareName checks the file name an image is stored and reported under.
func firmwareName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", errors.New("name the image: ?name=FILE")
	case len(name) > 200:
		return "", errors.New("image name longer than 200 bytes")
	case name == "." || name == ".." || strings.ContainsAny(name, `/\`):
		return "", fmt.Errorf("image name %q: a file name, without folders", name)
	case !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", fmt.Errorf("image name %q: control characters or invalid UTF-8", name)
	}
	return name, nil
}

// startFirmware submits an image for p and audits the upload.
func (s *Server) startFirmware(r *http.Request, p principal, name string, body []byte) (store.Scan, int, error) {
	if s.opts.Queue == nil {
		return store.Scan{}, http.StatusServiceUnavailable, errNoQueue
	}
	sc, err := s.opts.Queue.SubmitFirmware(r.Context(), name, body, p.name())
	if err != nil {
		s.log.Error("submit firmware", "err", err)
		return store.Scan{}, http.StatusInternalServerError, errors.New("could not store the image")
	}
	var req struct {
		SHA256 string `json:"sha256"`
	}
	json.Unmarshal(sc.Request, &req)
	s.metrics.firmwareJobs.Add(1)
	s.audit(r.Context(), p.name(), "firmware-upload", fmt.Sprintf("scan %d image %q size %d sha256 %s", sc.ID, name, len(body), req.SHA256), clientIP(r))
	return sc, http.StatusAccepted, nil
}

// tooLarge is the message of a 413 for an image.
func (s *Server) tooLarge() string {
	return fmt.Sprintf("firmware image larger than the %d bytes (%d MiB) this server accepts", s.opts.MaxUploadBytes, s.opts.MaxUploadBytes>>20)
}

// ScheduleRequest is the body of POST /api/v1/schedules: a name, an
// interval and the scan to repeat.
type ScheduleRequest struct {
	Name string `json:"name"`
	// EverySeconds is the interval between runs (at least 60).
	EverySeconds int64 `json:"every_seconds"`
	jobs.ScanRequest
}

// maxScheduleInterval keeps intervals far from overflowing a Duration.
const maxScheduleInterval = 366 * 24 * time.Hour

// createSchedule validates and stores a schedule for p, auditing the
// change or the policy refusal.
func (s *Server) createSchedule(r *http.Request, p principal, req ScheduleRequest) (store.Schedule, int, error) {
	if s.opts.Queue == nil {
		return store.Schedule{}, http.StatusServiceUnavailable, errNoQueue
	}
	req.Name = strings.TrimSpace(req.Name)
	every := time.Duration(req.EverySeconds) * time.Second
	switch {
	case req.Name == "" || len(req.Name) > 200:
		return store.Schedule{}, http.StatusBadRequest, errors.New("a schedule needs a name (at most 200 bytes)")
	case every < store.MinScheduleInterval || req.EverySeconds > int64(maxScheduleInterval/time.Second):
		return store.Schedule{}, http.StatusBadRequest, fmt.Errorf("interval: between %s and %s", store.MinScheduleInterval, maxScheduleInterval)
	}
	if err := s.opts.Queue.CheckSchedule(r.Context(), req.ScanRequest); err != nil {
		code := scanRefusal(err)
		if code == http.StatusForbidden {
			s.metrics.policyRefused.Add(1)
			s.audit(r.Context(), p.name(), "schedule-refused", fmt.Sprintf("schedule %q %s: %v", clip(req.Name, 100), describeRequest(req.ScanRequest), err), clientIP(r))
		}
		return store.Schedule{}, code, err
	}
	raw, err := json.Marshal(req.ScanRequest)
	if err != nil {
		return store.Schedule{}, http.StatusInternalServerError, err
	}
	sc, err := s.st.CreateSchedule(r.Context(), store.Schedule{Name: req.Name, Targets: req.Targets, Request: raw, Every: every, CreatedBy: p.name()})
	if err != nil {
		return store.Schedule{}, http.StatusInternalServerError, err
	}
	s.audit(r.Context(), p.name(), "schedule-create", fmt.Sprintf("schedule %d %q every %s %s", sc.ID, clip(sc.Name, 100), formatEvery(sc.Every), describeRequest(req.ScanRequest)), clientIP(r))
	return sc, http.StatusCreated, nil
}

// deleteSchedule removes a schedule for p and audits it.
func (s *Server) deleteSchedule(r *http.Request, p principal) (int, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return http.StatusBadRequest, errors.New("not a schedule id")
	}
	if err := s.st.DeleteSchedule(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return http.StatusNotFound, errors.New("no such schedule")
		}
		return http.StatusInternalServerError, err
	}
	s.audit(r.Context(), p.name(), "schedule-delete", fmt.Sprintf("schedule %d", id), clientIP(r))
	return http.StatusNoContent, nil
}

// scanByPath reads the scan named by the {id} of the path.
func (s *Server) scanByPath(r *http.Request) (store.Scan, int, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return store.Scan{}, http.StatusBadRequest, errors.New("not a scan id")
	}
	sc, err := s.st.Scan(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Scan{}, http.StatusNotFound, errors.New("no such scan")
	}
	if err != nil {
		return store.Scan{}, http.StatusInternalServerError, err
	}
	return sc, http.StatusOK, nil
}

// maxScanFindings bounds the findings shown for one scan.
const maxScanFindings = 1000

// scanFindings returns the findings a scan stored (its shards' reports),
// capped; truncated says so.
func (s *Server) scanFindings(ctx context.Context, sc store.Scan, p principal) (fs []store.StoredFinding, truncated bool, err error) {
	// Exactly the findings of the reports this scan's shards stored.
	fs, err = s.st.Findings(ctx, store.FindingFilter{Scan: sc.ID, Limit: maxScanFindings})
	if err != nil {
		return nil, false, err
	}
	truncated = len(fs) >= maxScanFindings
	if !p.seesSecrets() {
		for i := range fs {
			fs[i].Evidence = redactEvidence(fs[i].Evidence)
		}
	}
	sortFindings(fs)
	return fs, truncated, nil
}

// sortFindings orders findings most severe first, then by device.
func sortFindings(fs []store.StoredFinding) {
	slices.SortFunc(fs, func(a, b store.StoredFinding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), strings.Compare(a.Device, b.Device),
			strings.Compare(a.Check, b.Check), cmp.Compare(a.ID, b.ID))
	})
}

// percent is done of total as a whole percentage (0 for no total).
func percent(done, total int) int {
	if total <= 0 {
		return 0
	}
	return min(100, done*100/total)
}

// formatEvery writes an interval the way the schedule form reads it.
func formatEvery(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// parseEvery reads an interval: a Go duration ("90m", "12h") or whole days ("7d").
func parseEvery(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 366 {
			return 0, fmt.Errorf("interval %q: want 1d to 366d", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("interval %q: want a duration such as 30m, 12h or 7d", v)
	}
	return d, nil
}

// API handlers.

func (s *Server) apiScans(w http.ResponseWriter, r *http.Request, _ principal) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit: want 1 to 1000")
			return
		}
		limit = n
	}
	scans, err := s.st.Scans(r.Context(), limit)
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"scans": scans})
}

func (s *Server) apiStartScan(w http.ResponseWriter, r *http.Request, p principal) {
	var req jobs.ScanRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "want a JSON scan request {\"targets\": …, \"ports\": …, \"checks\": […], \"aggressive\": …}: "+err.Error())
		return
	}
	sc, code, err := s.startScan(r, p, req)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/scans/%d", sc.ID))
	writeJSON(w, code, sc)
}

func (s *Server) apiScan(w http.ResponseWriter, r *http.Request, _ principal) {
	sc, code, err := s.scanByPath(r)
	if err != nil {
		s.fail(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, sc)
}

// ScanFindings is the answer of GET /api/v1/scans/{id}/findings.
type ScanFindings struct {
	Scan     store.Scan            `json:"scan"`
	Findings []store.StoredFinding `json:"findings"`
	// Truncated says the list was capped (1000 findings, 500 devices).
	Truncated bool `json:"truncated,omitempty"`
}

func (s *Server) apiScanFindings(w http.ResponseWriter, r *http.Request, p principal) {
	sc, code, err := s.scanByPath(r)
	if err != nil {
		s.fail(w, code, err)
		return
	}
	fs, truncated, err := s.scanFindings(r.Context(), sc, p)
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ScanFindings{Scan: sc, Findings: fs, Truncated: truncated})
}

func (s *Server) apiFirmware(w http.ResponseWriter, r *http.Request, p principal) {
	name, err := firmwareName(r.URL.Query().Get("name"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.opts.Queue == nil {
		writeError(w, http.StatusServiceUnavailable, errNoQueue.Error())
		return
	}
	if r.ContentLength > s.opts.MaxUploadBytes {
		writeError(w, http.StatusRequestEntityTooLarge, s.tooLarge())
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxUploadBytes))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			writeError(w, http.StatusRequestEntityTooLarge, s.tooLarge())
			return
		}
		writeError(w, http.StatusBadRequest, "could not read the image")
		return
	}
	sc, code, err := s.startFirmware(r, p, name, body)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/scans/%d", sc.ID))
	writeJSON(w, code, sc)
}

func (s *Server) apiSchedules(w http.ResponseWriter, r *http.Request, _ principal) {
	scs, err := s.st.Schedules(r.Context())
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedules": scs})
}

func (s *Server) apiCreateSchedule(w http.ResponseWriter, r *http.Request, p principal) {
	var req ScheduleRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "want a JSON schedule {\"name\": …, \"every_seconds\": …, \"targets\": …, \"ports\": …}: "+err.Error())
		return
	}
	sc, code, err := s.createSchedule(r, p, req)
	if err != nil {
		s.fail(w, code, err)
		return
	}
	writeJSON(w, code, sc)
}

func (s *Server) apiDeleteSchedule(w http.ResponseWriter, r *http.Request, p principal) {
	code, err := s.deleteSchedule(r, p)
	if err != nil {
		s.fail(w, code, err)
		return
	}
	w.WriteHeader(code)
}

// Dashboard pages.

// scanForm is what the scan form was filled with, to show it again.
type scanForm struct {
	Targets, Ports string
	Checks         map[string]bool
	Aggressive     bool
}

func (s *Server) renderScans(w http.ResponseWriter, r *http.Request, p principal, code int, data map[string]any) {
	scans, err := s.st.Scans(r.Context(), 100)
	if err != nil {
		s.pageError(w, r, p, http.StatusInternalServerError, err)
		return
	}
	data["Scans"] = scans
	data["LiveChecks"] = s.liveChecks
	data["QueueOff"] = s.opts.Queue == nil
	data["MaxUploadMiB"] = s.opts.MaxUploadBytes >> 20
	if _, ok := data["Form"]; !ok {
		data["Form"] = scanForm{}
	}
	s.render(w, r, code, "scans", p, data)
}

func (s *Server) scansPage(w http.ResponseWriter, r *http.Request, p principal) {
	s.renderScans(w, r, p, http.StatusOK, map[string]any{})
}

func (s *Server) scansSubmit(w http.ResponseWriter, r *http.Request, p principal) {
	form := scanForm{Targets: r.PostFormValue("targets"), Ports: strings.TrimSpace(r.PostFormValue("ports")),
		Aggressive: r.PostFormValue("aggressive") != "", Checks: map[string]bool{}}
	req := jobs.ScanRequest{Targets: form.Targets, Ports: form.Ports, Aggressive: form.Aggressive}
	for _, c := range r.PostForm["checks"] {
		form.Checks[c] = true
		req.Checks = append(req.Checks, c)
	}
	sc, code, err := s.startScan(r, p, req)
	if err != nil {
		s.renderScans(w, r, p, code, map[string]any{"Error": err.Error(), "Form": form})
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/scans/%d", sc.ID), http.StatusSeeOther)
}

func (s *Server) firmwareSubmit(w http.ResponseWriter, r *http.Request, p principal) {
	// guard already parsed the (size-capped) multipart form for the CSRF token.
	f, hdr, err := r.FormFile("firmware")
	if err != nil {
		s.renderScans(w, r, p, http.StatusBadRequest, map[string]any{"FirmwareError": "choose a firmware image file"})
		return
	}
	defer f.Close()
	name, err := firmwareName(hdr.Filename)
	if err != nil {
		s.renderScans(w, r, p, http.StatusBadRequest, map[string]any{"FirmwareError": err.Error()})
		return
	}
	body, err := io.ReadAll(io.LimitReader(f, s.opts.MaxUploadBytes+1))
	if err != nil {
		s.renderScans(w, r, p, http.StatusBadRequest, map[string]any{"FirmwareError": "could not read the image"})
		return
	}
	if int64(len(body)) > s.opts.MaxUploadBytes {
		s.renderScans(w, r, p, http.StatusRequestEntityTooLarge, map[string]any{"FirmwareError": s.tooLarge()})
		return
	}
	sc, code, err := s.startFirmware(r, p, name, body)
	if err != nil {
		s.renderScans(w, r, p, code, map[string]any{"FirmwareError": err.Error()})
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/scans/%d", sc.ID), http.StatusSeeOther)
}

func (s *Server) scanPage(w http.ResponseWriter, r *http.Request, p principal) {
	sc, code, err := s.scanByPath(r)
	if err != nil {
		s.pageError(w, r, p, code, err)
		return
	}
	fs, truncated, err := s.scanFindings(r.Context(), sc, p)
	if err != nil {
		s.pageError(w, r, p, http.StatusInternalServerError, err)
		return
	}
	s.render(w, r, http.StatusOK, "scan", p, map[string]any{"Scan": sc, "Findings": fs, "Truncated": truncated,
		"Request": string(sc.Request)})
}

func (s *Server) renderSchedules(w http.ResponseWriter, r *http.Request, p principal, code int, data map[string]any) {
	scs, err := s.st.Schedules(r.Context())
	if err != nil {
		s.pageError(w, r, p, http.StatusInternalServerError, err)
		return
	}
	data["Schedules"] = scs
	data["QueueOff"] = s.opts.Queue == nil
	s.render(w, r, code, "schedules", p, data)
}

func (s *Server) schedulesPage(w http.ResponseWriter, r *http.Request, p principal) {
	s.renderSchedules(w, r, p, http.StatusOK, map[string]any{})
}

func (s *Server) schedulesSubmit(w http.ResponseWriter, r *http.Request, p principal) {
	form := map[string]string{"Name": r.PostFormValue("name"), "Targets": r.PostFormValue("targets"),
		"Ports": strings.TrimSpace(r.PostFormValue("ports")), "Every": r.PostFormValue("every")}
	every, err := parseEvery(form["Every"])
	if err != nil {
		s.renderSchedules(w, r, p, http.StatusBadRequest, map[string]any{"Error": err.Error(), "Form": form})
		return
	}
	req := ScheduleRequest{Name: form["Name"], EverySeconds: int64(every / time.Second),
		ScanRequest: jobs.ScanRequest{Targets: form["Targets"], Ports: form["Ports"]}}
	sc, code, err := s.createSchedule(r, p, req)
	if err != nil {
		if code == http.StatusInternalServerError {
			s.pageError(w, r, p, code, err)
			return
		}
		s.renderSchedules(w, r, p, code, map[string]any{"Error": err.Error(), "Form": form})
		return
	}
	s.renderSchedules(w, r, p, http.StatusCreated, map[string]any{"Created": sc})
}

func (s *Server) scheduleDelete(w http.ResponseWriter, r *http.Request, p principal) {
	code, err := s.deleteSchedule(r, p)
	if err != nil {
		if code == http.StatusInternalServerError {
			s.pageError(w, r, p, code, err)
			return
		}
		s.renderSchedules(w, r, p, code, map[string]any{"Error": err.Error()})
		return
	}
	http.Redirect(w, r, "/schedules", http.StatusSeeOther)
}
