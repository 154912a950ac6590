package server

import (
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"

	"github.com/iotcop/iotcop/store"
)

// static serves the embedded files of /static/.
func (s *Server) static(w http.ResponseWriter, r *http.Request, _ principal) {
	name := r.PathValue("name")
	body, err := fs.ReadFile(staticFiles, "static/"+name)
	if err != nil || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(body)
}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request, p principal) {
	s.render(w, r, http.StatusOK, "account", p, map[string]any{"MinPassword": store.MinPasswordLength})
}

// passwordSubmit changes the signed-in user's password. It needs the
// current one (rate limited like logins, since a stolen session could
// otherwise guess it) and logs out every other session of the user.
func (s *Server) passwordSubmit(w http.ResponseWriter, r *http.Request, p principal) {
	ip := clientIP(r)
	data := map[string]any{"MinPassword": store.MinPasswordLength}
	if !s.allowLogin(ip) {
		s.metrics.loginLimited.Add(1)
		w.Header().Set("Retry-After", "60")
		data["Error"] = "too many attempts; wait a minute"
		s.render(w, r, http.StatusTooManyRequests, "account", p, data)
		return
	}
	current, next := r.PostFormValue("current"), r.PostFormValue("new")
	if next != r.PostFormValue("confirm") {
		data["Error"] = "the new password and its confirmation differ"
		s.render(w, r, http.StatusBadRequest, "account", p, data)
		return
	}
	ended, err := s.st.ChangePassword(r.Context(), p.user.ID, current, next, p.sessionID)
	switch {
	case errors.Is(err, store.ErrBadCredentials):
		s.audit(r.Context(), p.name(), "password-change-failed", "wrong current password", ip)
		data["Error"] = "the current password is wrong"
		s.render(w, r, http.StatusForbidden, "account", p, data)
		return
	case err != nil:
		data["Error"] = err.Error()
		s.render(w, r, http.StatusBadRequest, "account", p, data)
		return
	}
	s.audit(r.Context(), p.name(), "password-change", fmt.Sprintf("%d other session(s) ended", ended), ip)
	data["Changed"], data["Ended"] = true, ended
	s.render(w, r, http.StatusOK, "account", p, data)
}

// tokenOwner is whose tokens p lists and revokes: its own, or for an
// admin session everyone's (0).
func tokenOwner(p principal) int64 {
	if p.can(scopeAdmin) {
		return 0
	}
	return p.user.ID
}

func (s *Server) apiTokens(w http.ResponseWriter, r *http.Request, p principal) {
	ts, err := s.st.Tokens(r.Context(), tokenOwner(p))
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

// revokeToken deletes the token named by the path for p and audits it.
func (s *Server) revokeToken(r *http.Request, p principal) (int, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return http.StatusBadRequest, errors.New("not a token id")
	}
	tok, err := s.st.RevokeToken(r.Context(), id, tokenOwner(p))
	if errors.Is(err, store.ErrNotFound) {
		return http.StatusNotFound, errors.New("no such token")
	}
	if err != nil {
		return http.StatusInternalServerError, err
	}
	s.audit(r.Context(), p.name(), "token-revoke", fmt.Sprintf("token %d %q of %s", tok.ID, tok.Name, tok.User.Name), clientIP(r))
	return http.StatusNoContent, nil
}

func (s *Server) apiRevokeToken(w http.ResponseWriter, r *http.Request, p principal) {
	code, err := s.revokeToken(r, p)
	if err != nil {
		s.fail(w, code, err)
		return
	}
	w.WriteHeader(code)
}

func (s *Server) tokenRevoke(w http.ResponseWriter, r *http.Request, p principal) {
	code, err := s.revokeToken(r, p)
	if err != nil {
		if code == http.StatusInternalServerError {
			s.pageError(w, r, p, code, err)
			return
		}
		s.renderTokens(w, r, p, code, map[string]any{"Error": err.Error()})
		return
	}
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}

// userAction disables, enables or deletes the account named by the path.
// An admin cannot do this to their own account (no locking oneself out,
// and so there is always an admin left).
func (s *Server) userAction(action string) func(http.ResponseWriter, *http.Request, principal) {
	return func(w http.ResponseWriter, r *http.Request, p principal) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			s.renderUsers(w, r, p, http.StatusBadRequest, map[string]any{"Error": "not a user id"})
			return
		}
		u, err := s.st.User(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			s.renderUsers(w, r, p, http.StatusNotFound, map[string]any{"Error": "no such user"})
			return
		}
		if err != nil {
			s.pageError(w, r, p, http.StatusInternalServerError, err)
			return
		}
		if u.ID == p.user.ID {
			s.renderUsers(w, r, p, http.StatusBadRequest, map[string]any{"Error": "you cannot " + action + " your own account"})
			return
		}
		switch action {
		case "disable":
			err = s.st.SetUserDisabled(r.Context(), id, true)
		case "enable":
			err = s.st.SetUserDisabled(r.Context(), id, false)
		case "delete":
			err = s.st.DeleteUser(r.Context(), id)
		default:
			err = fmt.Errorf("unknown user action %q", action)
		}
		if err != nil {
			s.pageError(w, r, p, http.StatusInternalServerError, err)
			return
		}
		s.audit(r.Context(), p.name(), "user-"+action, fmt.Sprintf("user %s role %s", u.Name, u.Role), clientIP(r))
		http.Redirect(w, r, "/users", http.StatusSeeOther)
	}
}
