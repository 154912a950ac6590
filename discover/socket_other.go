//go:build !unix

package discover

import "syscall"

// reusePort does nothing where SO_REUSEPORT does not exist; binding fails
// when a responder holds the port, and discovery goes on without it.
func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
