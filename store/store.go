// Package store keeps the fleet service's data: imported reports (the
// report contract, iotcop/report/v1), the devices and findings they hold,
// verdicts, users, API tokens, sessions and the audit log. It uses an
// embedded SQLite database (pure Go, WAL) in a data folder by default, or
// PostgreSQL (through pgx); one schema, kept by the numbered SQL
// migrations embedded from migrations/, serves both (see Dialect).
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"
	_ "modernc.org/sqlite"             // the database/sql driver "sqlite"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// timeLayout is fixed width so that text order is time order in SQL.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// DBFile is the database file name inside the data folder.
const DBFile = "iotcop.db"

// ErrNotFound is returned when the asked-for row does not exist.
var ErrNotFound = errors.New("not found")

// Store is an open fleet database. It is safe for concurrent use.
type Store struct {
	db       *DB
	location string
	now      func() time.Time

	// statsMu guards the counts refreshStats decides by: findings at the
	// last ANALYZE and imported since.
	statsMu               sync.Mutex
	statsRows, statsSince int
}

// refreshStats keeps SQLite's query planner statistics in step with the
// data: ANALYZE (sampled, so it costs milliseconds) whenever the findings
// imported since the last one at least match what was there then — a few
// times as a fleet grows, never per import. Without statistics SQLite
// picks poor plans for the filtered fleet queries once tables grow (15x
// slower measured at 100 000 findings); PostgreSQL's autovacuum does this.
func (s *Store) refreshStats(ctx context.Context, added int) {
	if s.db.Dialect != SQLite {
		return
	}
	s.statsMu.Lock()
	s.statsSince += added
	due := s.statsSince >= max(1000, s.statsRows)
	if due {
		s.statsRows += s.statsSince
		s.statsSince = 0
	}
	s.statsMu.Unlock()
	if due {
		// Best effort: a failure only leaves the old statistics.
		s.db.ExecContext(ctx, "PRAGMA analysis_limit=1000; ANALYZE")
	}
}

// IsPostgresURL says whether a --db value names a PostgreSQL database
// (postgres:// or postgresql://) rather than a data folder.
func IsPostgresURL(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

// Open opens the database at location and brings its schema up to date:
// a postgres:// URL, or a folder that holds (or will hold) the embedded
// SQLite database.
func Open(ctx context.Context, location string) (*Store, error) {
	if IsPostgresURL(location) {
		return openPostgres(ctx, location)
	}
	return openSQLite(ctx, location)
}

func openSQLite(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder %s: %w", dir, err)
	}
	path := filepath.Join(dir, DBFile)
	db, err := sql.Open("sqlite", SQLiteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	s := &Store{db: &DB{DB: db, Dialect: SQLite}, location: dir, now: func() time.Time { return time.Now().UTC() }}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("restrict database %s: %w", path, err)
	}
	// Planner statistics for what is there already (see refreshStats),
	// gathered at start-up only when the database has none yet.
	var analyzed int
	s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").Scan(&analyzed)
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM findings").Scan(&s.statsRows); err == nil && s.statsRows > 0 && analyzed == 0 {
		s.db.ExecContext(ctx, "PRAGMA analysis_limit=1000; ANALYZE")
	}
	return s, nil
}

// SQLiteDSN is the connection string for the database file at path: WAL,
// a generous busy timeout (writers queue instead of failing), foreign
// keys, and transactions that take the write lock when they begin.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(30000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

func openPostgres(ctx context.Context, url string) (*Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL database %s: %w", redactURL(url), err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	s := &Store{db: &DB{DB: db, Dialect: Postgres}, location: url, now: func() time.Time { return time.Now().UTC() }}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to PostgreSQL %s: %w", redactURL(url), err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate PostgreSQL database %s: %w", redactURL(url), err)
	}
	return s, nil
}

// redactURL hides the password of a database URL for messages and logs.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return u
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
}

// Dialect says which database the store runs on.
func (s *Store) Dialect() Dialect { return s.db.Dialect }

// URL is the PostgreSQL connection URL the store was opened with
// (password included: for connecting, never for display); empty on SQLite.
func (s *Store) URL() string {
	if s.db.Dialect == Postgres {
		return s.location
	}
	return ""
}

// Location names the database for people: the data folder, or the
// PostgreSQL URL with its password hidden.
func (s *Store) Location() string {
	if s.db.Dialect == Postgres {
		return redactURL(s.location)
	}
	return s.location
}

// WithMigrationLock runs fn while holding the database-wide lock under
// which schemas change, so that several processes starting together on
// one PostgreSQL (a server and its workers) migrate one at a time. On
// SQLite, transactions that begin with the write lock serialise them.
func (s *Store) WithMigrationLock(ctx context.Context, fn func() error) error {
	if s.db.Dialect != Postgres {
		return fn()
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer conn.Close()
	const lockKey = 0x10_7c_0b // "iotcop"
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey)
	return fn()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// DB exposes the database handle: for the job queue, which keeps its
// tables in the same database, and for tests that inspect what is stored.
func (s *Store) DB() *DB { return s.db }

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", e.Name())
		}
		body, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies every migration not yet applied, each in its own
// transaction together with its schema_migrations row.
func (s *Store) migrate(ctx context.Context) error {
	return s.WithMigrationLock(ctx, func() error { return s.migrateLocked(ctx) })
}

func (s *Store) migrateLocked(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return err
	}
	ms, err := migrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		err := s.InTx(ctx, func(tx *Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, s.db.Dialect.ddl(m.sql)); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, s.stamp())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// InTx runs fn in one transaction: committed when fn returns nil, rolled
// back otherwise.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(&Tx{Tx: tx, Dialect: s.db.Dialect}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (s *Store) stamp() string { return s.now().Format(timeLayout) }

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(v string) time.Time {
	t, _ := time.Parse(timeLayout, v)
	return t
}
