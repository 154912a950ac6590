package daemontest

import (
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// ProgramTB is a TB for a benchmark program (not a test): Fatalf and
// Skipf stop the daemons started so far (the cleanups) and exit the
// process. Temporary folders go under Dir.
type ProgramTB struct {
	Dir      string
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	closed   bool
	// done closes when the cleanups have run.
	done chan struct{}
}

// Helper implements TB.
func (*ProgramTB) Helper() {}

// Logf implements TB.
func (*ProgramTB) Logf(format string, args ...any) { log.Printf(format, args...) }

// Fatalf implements TB: it stops the daemons and exits 1.
func (m *ProgramTB) Fatalf(format string, args ...any) {
	m.mu.Lock()
	m.failed = true
	m.mu.Unlock()
	log.Printf(format, args...)
	m.Close()
	os.Exit(1)
}

// Skipf implements TB: it stops the daemons and exits 2.
func (m *ProgramTB) Skipf(format string, args ...any) {
	log.Printf("cannot run: %s", fmt.Sprintf(format, args...))
	m.Close()
	os.Exit(2)
}

// Cleanup implements TB.
func (m *ProgramTB) Cleanup(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cleanups = append(m.cleanups, f)
}

// TempDir implements TB.
func (m *ProgramTB) TempDir() string {
	d, err := os.MkdirTemp(m.Dir, "d")
	if err != nil {
		m.Fatalf("temp dir: %v", err)
	}
	return d
}

// Failed implements TB.
func (m *ProgramTB) Failed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed
}

// Close runs the cleanups once, last registered first. A second caller
// (Ctrl-C during a fatal error, say) waits until they have run, so the
// program does not exit half cleaned up; the wait is bounded in case a
// cleanup itself ends up calling Close.
func (m *ProgramTB) Close() {
	m.mu.Lock()
	if m.done == nil {
		m.done = make(chan struct{})
	}
	done := m.done
	if m.closed {
		m.mu.Unlock()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		return
	}
	m.closed = true
	fs := m.cleanups
	m.mu.Unlock()
	defer close(done)
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// StartProgram makes the ProgramTB of a benchmark program called name: a
// work folder (printed and kept when keep, removed at the end otherwise)
// and cleanups that also run on Ctrl-C, SIGTERM and SIGHUP before the
// program exits with 130. Call Close when done.
func StartProgram(name string, keep bool) *ProgramTB {
	dir, err := os.MkdirTemp("", "iotcop-"+name+"-")
	if err != nil {
		log.Fatal(err)
	}
	t := &ProgramTB{Dir: dir}
	if keep {
		log.Printf("work directory: %s", dir)
	} else {
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sig
		t.Close()
		os.Exit(130)
	}()
	return t
}
