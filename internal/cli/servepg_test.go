package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/internal/pgtest"
)

// TestServeOnPostgres starts `iotcop serve --db postgres://…` with the
// default TLS (a self-signed certificate kept in --data) and checks what
// it prints: the database without its password, the one-time secret and
// where to log in.
func TestServeOnPostgres(t *testing.T) {
	dsn := pgtest.Start(t).DSN(t)
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--db", dsn, "--data", data, "--listen", daemontest.Addr() + ":0", "--workers", "1"},
			strings.NewReader(""), out, errb)
	}()
	serving := regexp.MustCompile(`serving (https://[^ ]+/) `)
	for deadline := time.Now().Add(60 * time.Second); !serving.MatchString(out.String()); time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s %s", code, out.String(), errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s %s", out.String(), errb.String())
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exit %d: %s", code, errb.String())
	}
	text := out.String()
	for _, want := range []string{"iotcop: database postgres://iotcop:xxxxx@", "self-signed TLS certificate " + data, "one-time secret", "log in at https://"} {
		if !strings.Contains(text, want) {
			t.Errorf("serve output lacks %q:\n%s", want, text)
		}
	}
	pw := strings.SplitN(strings.SplitN(dsn, "@", 2)[0], ":", 3)[2] // postgres://user:PW@…
	if strings.Contains(text, pw) || strings.Contains(errb.String(), pw) {
		t.Fatalf("the database password appears in the output")
	}
}
