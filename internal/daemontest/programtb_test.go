package daemontest

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestProgramTBCloseWaits: a second Close returns only after the first
// has run every cleanup, and the cleanups run once.
func TestProgramTBCloseWaits(t *testing.T) {
	m := &ProgramTB{Dir: t.TempDir()}
	var ran atomic.Int32
	release := make(chan struct{})
	m.Cleanup(func() { <-release; ran.Add(1) })
	go m.Close()
	// Let the first Close start and block in the cleanup.
	for {
		m.mu.Lock()
		closed := m.closed
		m.mu.Unlock()
		if closed {
			break
		}
		time.Sleep(time.Millisecond)
	}
	second := make(chan struct{})
	go func() { m.Close(); close(second) }()
	select {
	case <-second:
		t.Fatal("the second Close returned while the cleanup was still running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-second
	if ran.Load() != 1 {
		t.Fatalf("cleanup ran %d times", ran.Load())
	}
}
