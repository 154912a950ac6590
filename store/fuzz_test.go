package store

import (
	"context"
	"testing"
	"time"
)

// FuzzImport feeds arbitrary bodies to Import: it must refuse or store,
// never panic, and a stored body imported again must be a duplicate.
func FuzzImport(f *testing.F) {
	f.Add([]byte("{}"))
	f.Add([]byte(`{"schema":"iotcop/report/v1"}`))
	f.Add([]byte("\x00\xff"))
	s, err := Open(context.Background(), f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Add(bodyForFuzz())
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx := context.Background()
		res, err := s.Import(ctx, b, "fuzz")
		if err != nil {
			return
		}
		again, err := s.Import(ctx, b, "fuzz")
		if err != nil || !again.Duplicate || again.ReportID != res.ReportID {
			t.Fatalf("re-import = %+v, %v; want duplicate of %d", again, err, res.ReportID)
		}
	})
}

// FuzzLessProvision checks the provision order is a strict order on
// arbitrary ids (irreflexive, asymmetric).
func FuzzLessProvision(f *testing.F) {
	f.Add("5.1-1", "5.10-1")
	f.Add("", "-")
	f.Add("5.1-1", "5.1-1a")
	f.Fuzz(func(t *testing.T, a, b string) {
		if lessProvision(a, a) {
			t.Fatalf("%q < itself", a)
		}
		if a != b && lessProvision(a, b) && lessProvision(b, a) {
			t.Fatalf("%q and %q each less than the other", a, b)
		}
	})
}

func bodyForFuzz() []byte {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return []byte(`{"schema":"iotcop/report/v1","tool":{"name":"iotcop","version":"t"},"started_at":"` + start.Format(time.RFC3339) +
		`","finished_at":"` + start.Format(time.RFC3339) + `","devices":[],"findings":[],"summary":{"devices":0,"services":0,"findings":0,"by_severity":{},"by_check":{}}}`)
}
