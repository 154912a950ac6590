package main

import (
	"fmt"
	"log"
	"os"
	"sync"
)

// mainTB is daemontest.TB for a program: Fatalf and Skipf stop the
// daemons started so far (the cleanups) and exit.
type mainTB struct {
	dir      string
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	closed   bool
}

func (*mainTB) Helper() {}

func (*mainTB) Logf(format string, args ...any) { log.Printf(format, args...) }

func (m *mainTB) Fatalf(format string, args ...any) {
	m.mu.Lock()
	m.failed = true
	m.mu.Unlock()
	log.Printf(format, args...)
	m.close()
	os.Exit(1)
}

func (m *mainTB) Skipf(format string, args ...any) {
	log.Printf("cannot run: %s", fmt.Sprintf(format, args...))
	m.close()
	os.Exit(2)
}

func (m *mainTB) Cleanup(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cleanups = append(m.cleanups, f)
}

func (m *mainTB) TempDir() string {
	d, err := os.MkdirTemp(m.dir, "d")
	if err != nil {
		m.Fatalf("temp dir: %v", err)
	}
	return d
}

func (m *mainTB) Failed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed
}

// close runs the cleanups once, last registered first.
func (m *mainTB) close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	fs := m.cleanups
	m.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
