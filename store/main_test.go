package store

import (
	"context"
	"os"
	"testing"

	"github.com/iotcop/iotcop/internal/pgtest"
)

// pg is one throw-away PostgreSQL server for the package's tests, started
// by the first test that asks for it; each test gets a database of its own.
var pg = pgtest.NewShared()

func TestMain(m *testing.M) { os.Exit(pg.RunTests(m)) }

// backend is one database a Store runs on, as the tests see it.
type backend struct {
	dialect Dialect
	// location returns a new, empty database for the test: a data folder
	// or a postgres:// URL. The PostgreSQL one skips the test when no
	// server can be had (not root and no postgresql package).
	location func(t *testing.T) string
}

// backends lists every dialect the store supports; a test that ranges
// over it runs on both.
func backends() []backend {
	return []backend{
		{SQLite, func(t *testing.T) string { return t.TempDir() }},
		{Postgres, func(t *testing.T) string { return pg.Get(t).DSN(t) }},
	}
}

// eachBackend runs fn as one parallel subtest per dialect ("sqlite",
// "postgres"), each with a new, empty store.
func eachBackend(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(string(b.dialect), func(t *testing.T) {
			t.Parallel()
			fn(t, openAt(t, b.location(t)))
		})
	}
}

// openAt opens the store at location, closed when the test ends.
func openAt(t *testing.T, location string) *Store {
	t.Helper()
	s, err := Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
