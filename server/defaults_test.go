package server

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/iotcop/iotcop/creds"
	"github.com/iotcop/iotcop/store"
)

// TestNoDefaultCredentialLogsIn: the service practises what iotcop checks.
// After the first start no pair of the built-in default lists logs in, and
// no password of those lists can be set for any account.
func TestNoDefaultCredentialLogsIn(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := Bootstrap(ctx, st, ""); err != nil {
		t.Fatal(err)
	}
	dict, err := creds.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	// The only account is the first admin, with a generated secret: a
	// default pair logs in only if its name is that account's.
	if n, err := st.UserCount(ctx); err != nil || n != 1 {
		t.Fatalf("%d accounts after the first start (%v)", n, err)
	}
	tried := map[string]bool{}
	for _, proto := range []string{"telnet", "ssh", "http", "ftp", "mqtt", "rtsp"} {
		for _, c := range dict.For(proto, "") {
			// The lists are in order of popularity: the first 25 of the
			// account's name are what an attacker tries (each costs a
			// bcrypt comparison).
			if c.Username == AdminName && !tried[c.Password] && len(tried) < 25 {
				tried[c.Password] = true
				if _, err := st.Authenticate(ctx, c.Username, c.Password); err == nil {
					t.Fatalf("default credential %s/%s logs in", c.Username, c.Password)
				}
			}
		}
	}
	if len(tried) < 10 {
		t.Fatalf("only %d default passwords for %q tried: the lists did not load", len(tried), AdminName)
	}
	passwords := dict.Passwords()
	// No default password can be chosen: first admin, new user or change.
	var long []string
	for p := range passwords {
		if len(p) >= store.MinPasswordLength {
			long = append(long, p)
		}
	}
	if len(long) == 0 {
		t.Fatal("no default password long enough to exercise the list check")
	}
	sort.Strings(long)
	for _, p := range long[:min(len(long), 25)] {
		if _, err := st.CreateUser(ctx, "op", store.RoleOperator, p); err == nil || !strings.Contains(err.Error(), "default passwords") {
			t.Fatalf("CreateUser with default password %q: %v", p, err)
		}
	}
	st2, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if _, err := Bootstrap(ctx, st2, long[0]); err == nil {
		t.Fatalf("IOTCOP_ADMIN_PASSWORD %q (a default password) accepted", long[0])
	}
}
