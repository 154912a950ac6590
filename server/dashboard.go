package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/iotcop/iotcop/store"
)

// render executes page with data plus what every page needs.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, page string, p principal, data map[string]any) {
	t, ok := s.pages[page]
	if !ok {
		s.log.Error("no template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if data == nil {
		data = map[string]any{}
	}
	data["Page"] = page
	data["Version"] = s.opts.Version
	if p.session != nil {
		data["User"] = p.user
		data["CSRF"] = p.session.CSRF
		data["CanImport"] = p.can(store.ScopeImport)
		data["CanScan"] = p.can(store.ScopeScan)
		data["IsAdmin"] = p.can(scopeAdmin)
		data["Redacted"] = !p.seesSecrets()
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		s.log.Error("render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

func (s *Server) pageError(w http.ResponseWriter, r *http.Request, p principal, code int, err error) {
	if code == http.StatusInternalServerError {
		s.log.Error("page", "path", r.URL.Path, "err", err)
		err = errors.New("internal error")
	}
	s.render(w, r, code, "error", p, map[string]any{"Code": code, "Error": err.Error()})
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request, p principal) {
	o, err := s.st.Overview(r.Context(), s.pstiRoutes)
	if err != nil {
		s.pageError(w, r, p, http.StatusInternalServerError, err)
		return
	}
	s.render(w, r, http.StatusOK, "overview", p, map[string]any{"O": o, "DefaultPasswords": o.Failing("5.1-1"),
		"Severities": []string{"critical", "high", "medium", "low", "info"}})
}

// devicesPerPage is how many devices the inventory page shows at once.
const devicesPerPage = 500

func (s *Server) devicesPage(w http.ResponseWriter, r *http.Request, p principal) {
	after := r.URL.Query().Get("after")
	ds, err := s.st.DevicePage(r.Context(), after, devicesPerPage+1)
	if err != nil {
		s.pageError(w, r, p, http.StatusInternalServerError, err)
		return
	}
	next := ""
	if len(ds) > devicesPerPage {
		ds = ds[:devicesPerPage]
		next = ds[len(ds)-1].Address
	}
	s.render(w, r, http.StatusOK, "devices", p, map[string]any{"Devices": ds, "After": after, "Next": next})
}

func (s *Server) devicePage(w http.ResponseWriter, r *http.Request, p principal) {
	addr := r.PathValue("address")
	d, err := s.st.Device(r.Context(), addr)
	if errors.Is(err, store.ErrNotFound) {
		s.pageError(w, r, p, http.StatusNotFound, errors.New("no such device"))
		return
	}
	if err != nil {
		s.pageError(w, r, p, http.StatusInternalServerError, err)
		return
	}
	hist, err := s.st.DeviceHistory(r.Context(), addr)
	if err != nil {
		s.pageError(w, r, p, http.StatusInternalServerError, err)
		return
	}
	r2 := r.Clone(r.Context())
	q := r2.URL.Query()
	q.Set("device", addr)
	for _, k := range []string{"check", "severity", "provision", "since", "limit"} {
		q.Del(k)
	}
	r2.URL.RawQuery = q.Encode()
	fs, _, err := s.findings(r2, p)
	if err != nil {
		s.pageError(w, r, p, http.StatusInternalServerError, err)
		return
	}
	data := map[string]any{"Device": d, "History": hist, "Findings": fs}
	if len(hist) > 0 {
		diff, code, err := s.deviceDiff(r, addr, p)
		if err != nil {
			s.pageError(w, r, p, code, err)
			return
		}
		data["Diff"] = diff
		data["From"], data["To"] = r.URL.Query().Get("from"), r.URL.Query().Get("to")
	}
	s.render(w, r, http.StatusOK, "device", p, data)
}

func (s *Server) findingsPage(w http.ResponseWriter, r *http.Request, p principal) {
	fs, flt, err := s.findings(r, p)
	if err != nil {
		s.pageError(w, r, p, http.StatusBadRequest, err)
		return
	}
	s.render(w, r, http.StatusOK, "findings", p, map[string]any{"Findings": fs, "Filter": flt,
		"Since": r.URL.Query().Get("since"), "Severities": []string{"critical", "high", "medium", "low", "info"}})
}

func (s *Server) uploadPage(w http.ResponseWriter, r *http.Request, p principal) {
	s.render(w, r, http.StatusOK, "upload", p, nil)
}

func (s *Server) uploadSubmit(w http.ResponseWriter, r *http.Request, p principal) {
	// guard already parsed the (size-capped) form to check the CSRF token.
	f, _, err := r.FormFile("report")
	if err != nil {
		s.render(w, r, http.StatusBadRequest, "upload", p, map[string]any{"Error": "choose a JSON report file"})
		return
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, store.MaxReportBytes+1))
	if err != nil || len(body) > store.MaxReportBytes {
		s.render(w, r, http.StatusBadRequest, "upload", p, map[string]any{"Error": "report too large or unreadable"})
		return
	}
	res, code, err := s.importReport(r, p, body)
	if err != nil {
		s.render(w, r, code, "upload", p, map[string]any{"Error": err.Error()})
		return
	}
	s.render(w, r, code, "upload", p, map[string]any{"Result": res})
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, p principal, code int, data map[string]any) {
	ts, err := s.st.Tokens(r.Context(), tokenOwner(p))
	if err != nil {
		s.pageError(w, r, p, http.StatusInternalServerError, err)
		return
	}
	data["Tokens"] = ts
	data["CanGrantImport"] = p.can(store.ScopeImport)
	data["CanGrantScan"] = p.can(store.ScopeScan)
	s.render(w, r, code, "tokens", p, data)
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, p principal) {
	s.renderTokens(w, r, p, http.StatusOK, map[string]any{})
}

func (s *Server) tokensSubmit(w http.ResponseWriter, r *http.Request, p principal) {
	var scopes []string
	for _, sc := range []string{store.ScopeRead, store.ScopeImport, store.ScopeScan} {
		if r.PostFormValue("scope_"+sc) != "" {
			scopes = append(scopes, sc)
		}
	}
	secret, tok, err := s.createToken(r.Context(), p, r.PostFormValue("name"), scopes, clientIP(r))
	if err != nil {
		s.renderTokens(w, r, p, http.StatusBadRequest, map[string]any{"Error": err.Error()})
		return
	}
	s.renderTokens(w, r, p, http.StatusCreated, map[string]any{"NewToken": secret, "Token": tok})
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, p principal) {
	s.renderUsers(w, r, p, http.StatusOK, map[string]any{})
}

func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, p principal, code int, data map[string]any) {
	us, err := s.st.Users(r.Context())
	if err != nil {
		s.pageError(w, r, p, http.StatusInternalServerError, err)
		return
	}
	data["Users"] = us
	s.render(w, r, code, "users", p, data)
}

func (s *Server) usersSubmit(w http.ResponseWriter, r *http.Request, p principal) {
	name, role := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("role")
	secret := randomToken(18)
	if _, err := s.st.CreateUser(r.Context(), name, role, secret); err != nil {
		s.renderUsers(w, r, p, http.StatusBadRequest, map[string]any{"Error": err.Error()})
		return
	}
	s.audit(r.Context(), p.name(), "user-create", "user "+name+" role "+role, clientIP(r))
	s.renderUsers(w, r, p, http.StatusCreated, map[string]any{"NewUser": name, "NewPassword": secret})
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, p principal) {
	log, err := s.st.AuditLog(r.Context(), 500)
	if err != nil {
		s.pageError(w, r, p, http.StatusInternalServerError, err)
		return
	}
	s.render(w, r, http.StatusOK, "audit", p, map[string]any{"Log": log})
}
