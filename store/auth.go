package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/iotcop/iotcop/creds"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Roles of a user, from least to most allowed.
const (
	RoleViewer   = "viewer"   // reads, with secrets redacted
	RoleOperator = "operator" // reads secrets, imports reports
	RoleAdmin    = "admin"    // also manages users and sees the audit log
)

// Scopes of an API token.
const (
	ScopeRead   = "read"
	ScopeImport = "import"
	// ScopeScan starts scans and firmware analyses and changes schedules.
	ScopeScan = "scan"
)

// ValidScope reports whether sc is a known token scope.
func ValidScope(sc string) bool { return sc == ScopeRead || sc == ScopeImport || sc == ScopeScan }

// ErrBadCredentials is returned for an unknown user, a wrong password or an
// unknown or expired token or session; callers must not say which.
var ErrBadCredentials = errors.New("bad credentials")

// User is an account of the service.
type User struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	// Disabled accounts cannot log in, and their sessions and tokens are
	// refused.
	Disabled bool `json:"disabled"`
}

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { return r == RoleViewer || r == RoleOperator || r == RoleAdmin }

// CreateUser adds an account; the password is kept only as a bcrypt hash.
func (s *Store) CreateUser(ctx context.Context, name, role, password string) (User, error) {
	if !ValidRole(role) {
		return User{}, fmt.Errorf("create user %s: unknown role %q", name, role)
	}
	if strings.TrimSpace(name) == "" {
		return User{}, fmt.Errorf("create user: empty name")
	}
	hash, err := hashPassword(password)
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", name, err)
	}
	now := s.now()
	var id int64
	err = s.db.QueryRowContext(ctx, "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
		name, role, hash, formatTime(now)).Scan(&id)
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", name, err)
	}
	return User{ID: id, Name: name, Role: role, CreatedAt: now}, nil
}

// MinPasswordLength is the shortest password an account may have.
const MinPasswordLength = 12

// hashPassword checks a new password (long enough, not one of the
// default passwords iotcop itself looks for) and returns its bcrypt hash.
func hashPassword(password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", fmt.Errorf("password shorter than %d characters", MinPasswordLength)
	}
	dict, err := creds.Builtin()
	if err != nil {
		return "", fmt.Errorf("check password: %w", err)
	}
	if dict.Passwords()[password] {
		return "", errors.New("password is on iotcop's own list of default passwords: choose another")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(hash), nil
}

// UserCount returns how many accounts exist.
func (s *Store) UserCount(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// Users lists the accounts.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, name, role, created_at, disabled FROM users ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var at string
		var disabled int
		if err := rows.Scan(&u.ID, &u.Name, &u.Role, &at, &disabled); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.Disabled = disabled != 0
		u.CreatedAt = parseTime(at)
		out = append(out, u)
	}
	return out, rows.Err()
}

// dummyHash makes a failed lookup cost as much as a wrong password.
var dummyHash = []byte("$2a$10$8KyJ4cxN06eGXjks87Qv9etzwWH7xGS8RNCWvL87EqRFKUtHuxCY6")

// Authenticate checks a name and password. A disabled account is refused
// like a wrong password, after the same work.
func (s *Store) Authenticate(ctx context.Context, name, password string) (User, error) {
	u, hash, err := s.userWithHash(ctx, "name = ?", name)
	if errors.Is(err, ErrNotFound) {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || u.Disabled {
		return User{}, ErrBadCredentials
	}
	return u, nil
}

// userWithHash reads one account and its password hash; ErrNotFound when
// no row matches.
func (s *Store) userWithHash(ctx context.Context, where string, arg any) (User, string, error) {
	var u User
	var hash, at string
	var disabled int
	err := s.db.QueryRowContext(ctx, "SELECT id, name, role, password_hash, created_at, disabled FROM users WHERE "+where, arg).
		Scan(&u.ID, &u.Name, &u.Role, &hash, &at, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", ErrNotFound
	}
	if err != nil {
		return User{}, "", fmt.Errorf("look up user: %w", err)
	}
	u.CreatedAt, u.Disabled = parseTime(at), disabled != 0
	return u, hash, nil
}

// MayStartScans says whether the account called name exists, is enabled
// and has a role that starts scans (operator or admin): what a schedule
// made by that account needs to keep running.
func (s *Store) MayStartScans(ctx context.Context, name string) (bool, error) {
	u, _, err := s.userWithHash(ctx, "name = ?", name)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !u.Disabled && (u.Role == RoleOperator || u.Role == RoleAdmin), nil
}

// User returns one account (disabled or not), or ErrNotFound.
func (s *Store) User(ctx context.Context, id int64) (User, error) {
	u, _, err := s.userWithHash(ctx, "id = ?", id)
	if err != nil {
		return User{}, fmt.Errorf("user %d: %w", id, err)
	}
	return u, nil
}

// userByID returns the enabled account a session or token belongs to;
// ErrBadCredentials when it is gone or disabled.
func (s *Store) userByID(ctx context.Context, id int64) (User, error) {
	u, _, err := s.userWithHash(ctx, "id = ?", id)
	if errors.Is(err, ErrNotFound) || err == nil && u.Disabled {
		return User{}, ErrBadCredentials
	}
	return u, err
}

// ChangePassword replaces the password of an account after checking its
// current one (ErrBadCredentials when wrong), and ends every session of
// the account except keepSession (the raw id of the session that asked;
// "" ends them all): whoever else knew the old password is logged out.
// It returns how many sessions it ended.
func (s *Store) ChangePassword(ctx context.Context, userID int64, current, next, keepSession string) (int, error) {
	u, hash, err := s.userWithHash(ctx, "id = ?", userID)
	if errors.Is(err, ErrNotFound) {
		return 0, ErrBadCredentials
	}
	if err != nil {
		return 0, err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(current)) != nil || u.Disabled {
		return 0, ErrBadCredentials
	}
	if next == current {
		return 0, fmt.Errorf("change password of %s: the new password is the current one", u.Name)
	}
	newHash, err := hashPassword(next)
	if err != nil {
		return 0, fmt.Errorf("change password of %s: %w", u.Name, err)
	}
	var ended int64
	err = s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", newHash, userID); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ? AND hash <> ?", userID, HashSecret(keepSession))
		if err != nil {
			return err
		}
		ended, _ = r.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("change password of %s: %w", u.Name, err)
	}
	return int(ended), nil
}

// SetUserDisabled disables or re-enables an account. Disabling ends its
// sessions; its tokens stay stored but are refused while it is disabled.
func (s *Store) SetUserDisabled(ctx context.Context, id int64, disabled bool) error {
	flag := 0
	if disabled {
		flag = 1
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		r, err := tx.ExecContext(ctx, "UPDATE users SET disabled = ? WHERE id = ?", flag, id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if disabled {
			_, err = tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", id)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("set user %d disabled=%t: %w", id, disabled, err)
	}
	return nil
}

// DeleteUser removes an account with its sessions and tokens. What it did
// (reports imported, scans started, the audit log) keeps its name.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		for _, q := range []string{"DELETE FROM sessions WHERE user_id = ?", "DELETE FROM api_tokens WHERE user_id = ?"} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		r, err := tx.ExecContext(ctx, "DELETE FROM users WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	return nil
}

// HashSecret is how tokens and session ids are kept at rest: they are long
// random values, so a fast hash suffices.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Token is an API token's record (never its value).
type Token struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	User      User      `json:"user"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
}

// Has reports whether the token carries scope.
func (t Token) Has(scope string) bool { return slices.Contains(t.Scopes, scope) }

// CreateToken stores the hash of secret as a token of user with scopes.
// The caller generates secret and shows it once.
func (s *Store) CreateToken(ctx context.Context, userID int64, name, secret string, scopes []string) (Token, error) {
	for _, sc := range scopes {
		if !ValidScope(sc) {
			return Token{}, fmt.Errorf("create token %s: unknown scope %q", name, sc)
		}
	}
	if len(scopes) == 0 {
		return Token{}, fmt.Errorf("create token %s: no scope", name)
	}
	u, err := s.userByID(ctx, userID)
	if err != nil {
		return Token{}, fmt.Errorf("create token %s: %w", name, err)
	}
	now := s.now()
	var id int64
	err = s.db.QueryRowContext(ctx, "INSERT INTO api_tokens (name, user_id, hash, scopes, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
		name, userID, HashSecret(secret), strings.Join(scopes, " "), formatTime(now)).Scan(&id)
	if err != nil {
		return Token{}, fmt.Errorf("create token %s: %w", name, err)
	}
	return Token{ID: id, Name: name, User: u, Scopes: scopes, CreatedAt: now}, nil
}

// LookupToken finds the token whose value is secret.
func (s *Store) LookupToken(ctx context.Context, secret string) (Token, error) {
	var t Token
	var scopes, at string
	err := s.db.QueryRowContext(ctx, "SELECT id, name, user_id, scopes, created_at FROM api_tokens WHERE hash = ?", HashSecret(secret)).
		Scan(&t.ID, &t.Name, &t.User.ID, &scopes, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrBadCredentials
	}
	if err != nil {
		return Token{}, fmt.Errorf("look up token: %w", err)
	}
	t.Scopes = strings.Fields(scopes)
	t.CreatedAt = parseTime(at)
	if t.User, err = s.userByID(ctx, t.User.ID); err != nil {
		return Token{}, err
	}
	return t, nil
}

// Tokens lists API tokens, newest first: those of one user, or with
// userID 0 every user's.
func (s *Store) Tokens(ctx context.Context, userID int64) ([]Token, error) {
	if userID == 0 {
		return s.tokens(ctx, "")
	}
	return s.tokens(ctx, "WHERE t.user_id = ?", userID)
}

func (s *Store) tokens(ctx context.Context, where string, args ...any) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.id, t.name, t.scopes, t.created_at, u.id, u.name, u.role, u.created_at, u.disabled
		FROM api_tokens t JOIN users u ON u.id = t.user_id `+where+` ORDER BY t.id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		var t Token
		var scopes, at, uat string
		var disabled int
		if err := rows.Scan(&t.ID, &t.Name, &scopes, &at, &t.User.ID, &t.User.Name, &t.User.Role, &uat, &disabled); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		t.Scopes, t.CreatedAt = strings.Fields(scopes), parseTime(at)
		t.User.CreatedAt, t.User.Disabled = parseTime(uat), disabled != 0
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken deletes token id when it belongs to userID (with userID 0,
// to anyone) and returns what it was. Another user's token is
// ErrNotFound, as a missing one is: callers do not learn it exists.
func (s *Store) RevokeToken(ctx context.Context, id, userID int64) (Token, error) {
	where, args := "WHERE t.id = ?", []any{id}
	if userID != 0 {
		where, args = where+" AND t.user_id = ?", append(args, userID)
	}
	ts, err := s.tokens(ctx, where, args...)
	if err != nil {
		return Token{}, fmt.Errorf("revoke token %d: %w", id, err)
	}
	if len(ts) == 0 {
		return Token{}, fmt.Errorf("token %d: %w", id, ErrNotFound)
	}
	r, err := s.db.ExecContext(ctx, "DELETE FROM api_tokens WHERE id = ?", id)
	if err != nil {
		return Token{}, fmt.Errorf("revoke token %d: %w", id, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return Token{}, fmt.Errorf("token %d: %w", id, ErrNotFound)
	}
	return ts[0], nil
}

// Session is a logged-in browser.
type Session struct {
	User User
	// CSRF is the token every form and state-changing request must carry.
	CSRF    string
	Expires time.Time
}

// CreateSession stores the hash of id as a session of user until ttl from now.
func (s *Store) CreateSession(ctx context.Context, userID int64, id, csrf string, ttl time.Duration) error {
	now := s.now()
	_, err := s.db.ExecContext(ctx, "INSERT INTO sessions (hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
		HashSecret(id), userID, csrf, formatTime(now), formatTime(now.Add(ttl)))
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// LookupSession finds an unexpired session by its id.
func (s *Store) LookupSession(ctx context.Context, id string) (Session, error) {
	var ses Session
	var uid int64
	var exp string
	err := s.db.QueryRowContext(ctx, "SELECT user_id, csrf, expires_at FROM sessions WHERE hash = ? AND expires_at > ?",
		HashSecret(id), s.stamp()).Scan(&uid, &ses.CSRF, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrBadCredentials
	}
	if err != nil {
		return Session{}, fmt.Errorf("look up session: %w", err)
	}
	ses.Expires = parseTime(exp)
	if ses.User, err = s.userByID(ctx, uid); err != nil {
		return Session{}, err
	}
	return ses, nil
}

// DeleteSession ends a session (logout) and drops expired ones.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE hash = ? OR expires_at <= ?", HashSecret(id), s.stamp())
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Detail string    `json:"detail"`
	Remote string    `json:"remote"`
}

// Audit records who did what.
func (s *Store) Audit(ctx context.Context, actor, action, detail, remote string) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO audit_log (at, actor, action, detail, remote) VALUES (?, ?, ?, ?, ?)",
		s.stamp(), actor, action, detail, remote)
	if err != nil {
		return fmt.Errorf("write audit log: %w", err)
	}
	return nil
}

// AuditLog returns the latest entries, newest first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, at, actor, action, detail, remote FROM audit_log ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Detail, &e.Remote); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		e.At = parseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
