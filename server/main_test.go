package server

import (
	"os"
	"testing"

	"github.com/iotcop/iotcop/internal/pgtest"
)

// pg is one throw-away PostgreSQL server for the package's tests, started
// by the first test that asks; each test gets a database of its own.
var pg = pgtest.NewShared()

func TestMain(m *testing.M) { os.Exit(pg.RunTests(m)) }
