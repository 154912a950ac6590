package daemontest

import (
	"fmt"
	"runtime"
	"sync"
)

// StartAll runs the start functions concurrently (daemons take a moment
// each to come up) and returns when all have. Each gets a TB whose Fatalf
// and Skipf end only that function; afterwards the first failure fails t,
// or else the first skip skips it, from t's own goroutine as testing
// requires. Cleanups registered by the functions are t's.
func StartAll(t TB, starts ...func(TB)) {
	t.Helper()
	var wg sync.WaitGroup
	subs := make([]*startTB, len(starts))
	for i, start := range starts {
		subs[i] = &startTB{TB: t}
		wg.Add(1)
		go func(s *startTB) {
			defer wg.Done()
			start(s)
		}(subs[i])
	}
	wg.Wait()
	for _, s := range subs {
		if s.fatal != "" {
			t.Fatalf("%s", s.fatal)
		}
	}
	for _, s := range subs {
		if s.skip != "" {
			t.Skipf("%s", s.skip)
		}
	}
}

// startTB is the TB of one StartAll function.
type startTB struct {
	TB
	mu          sync.Mutex
	fatal, skip string
	failed      bool
}

func (s *startTB) Fatalf(format string, args ...any) {
	s.mu.Lock()
	s.fatal, s.failed = fmt.Sprintf(format, args...), true
	s.mu.Unlock()
	runtime.Goexit()
}

func (s *startTB) Skipf(format string, args ...any) {
	s.mu.Lock()
	s.skip = fmt.Sprintf(format, args...)
	s.mu.Unlock()
	runtime.Goexit()
}

// Failed reports a failure of this function or of the whole test, so that
// cleanups print daemon output when either failed.
func (s *startTB) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed || s.TB.Failed()
}
