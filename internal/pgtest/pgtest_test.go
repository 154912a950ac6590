package pgtest

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/jackc/pgx/v5"
)

func TestNewestBinDir(t *testing.T) {
	tests := []struct {
		name     string
		versions map[string][]string // folder -> programs in its bin
		want     string              // folder, "" for an error
	}{
		{"one", map[string][]string{"15": {"initdb", "postgres"}}, "15"},
		{"newest major", map[string][]string{"15": {"initdb", "postgres"}, "17": {"initdb", "postgres"}, "16": {"initdb", "postgres"}}, "17"},
		{"numeric not lexical", map[string][]string{"9.6": {"initdb", "postgres"}, "10": {"initdb", "postgres"}}, "10"},
		{"incomplete newer skipped", map[string][]string{"15": {"initdb", "postgres"}, "16": {"postgres"}}, "15"},
		{"non-version folders ignored", map[string][]string{"common": {"initdb", "postgres"}, "14": {"initdb", "postgres"}}, "14"},
		{"none", map[string][]string{"16": {"psql"}}, ""},
		{"empty", map[string][]string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for v, progs := range tt.versions {
				for _, p := range progs {
					daemontest.WriteFile(t, root, filepath.Join(v, "bin", p), "#!/bin/sh\n", 0o755)
				}
			}
			got, err := newestBinDir(root)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("newestBinDir = %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(root, tt.want, "bin"); got != want {
				t.Errorf("newestBinDir = %q, want %q", got, want)
			}
		})
	}
}

func TestReachable(t *testing.T) {
	me := uint32(os.Getuid())
	other := me + 12345
	tests := []struct {
		name string
		mode os.FileMode // of the folder above the target
		uid  uint32
		want bool
	}{
		{"closed to others", 0o700, other, false},
		{"searchable by others", 0o711, other, true},
		{"closed but owned", 0o700, me, true},
		{"owned without search bit", 0o600, me, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// t.TempDir's own folders are closed to others.
			base, err := os.MkdirTemp("", "pgtest-reachable-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(base) })
			if err := os.Chmod(base, 0o755); err != nil {
				t.Fatal(err)
			}
			if !reachable(base, other) {
				t.Skipf("%s is not searchable by others", os.TempDir())
			}
			parent := filepath.Join(base, "p")
			target := filepath.Join(parent, "target")
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(parent, tt.mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(parent, 0o755) })
			if got := reachable(target, tt.uid); got != tt.want {
				t.Errorf("reachable(%s with parent %v, uid %d) = %v, want %v", target, tt.mode, tt.uid, got, tt.want)
			}
		})
	}
}

func TestDBName(t *testing.T) {
	s := &Server{}
	tests := []struct{ test, want string }{
		{"", "t1"},
		{"TestStore", "t2_teststore"},
		{"TestStore/with spaces & ünicode", "t3_teststore_with_spaces_nicode"},
		{strings.Repeat("X", 100), "t4_" + strings.Repeat("x", 60)},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		got := s.dbName(tt.test)
		if got != tt.want {
			t.Errorf("dbName(%q) = %q, want %q", tt.test, got, tt.want)
		}
		if len(got) > 63 || seen[got] {
			t.Errorf("dbName(%q) = %q: too long or repeated", tt.test, got)
		}
		seen[got] = true
	}
}

func TestStart(t *testing.T) {
	s := Start(t)
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		t.Fatalf("Addr() = %q, want a 127.x.y.z address", s.Addr())
	}

	var names []string
	t.Run("databases", func(t *testing.T) {
		ctx := daemontest.Context(t)
		dsnA, dsnB := s.DSN(t), s.DSN(t)
		if dsnA == dsnB {
			t.Fatalf("two DSN calls gave the same %q", dsnA)
		}
		for _, dsn := range []string{dsnA, dsnB} {
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			if u.Scheme != "postgres" || u.Host != s.Addr() || u.Query().Get("sslmode") != "disable" {
				t.Errorf("DSN %q: want postgres://…@%s/…?sslmode=disable", dsn, s.Addr())
			}
			if _, ok := u.User.Password(); !ok {
				t.Errorf("DSN %q has no password", dsn)
			}
		}
		a, b := connect(t, dsnA), connect(t, dsnB)
		for _, c := range []*pgx.Conn{a, b} {
			var db string
			if err := c.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
				t.Fatal(err)
			}
			names = append(names, db)
		}
		if names[0] == names[1] {
			t.Fatalf("both DSNs open database %q", names[0])
		}

		if _, err := a.Exec(ctx, "CREATE TABLE devices (address text PRIMARY KEY); INSERT INTO devices VALUES ('127.0.0.1')"); err != nil {
			t.Fatalf("create table in A: %v", err)
		}
		var n int
		if err := a.QueryRow(ctx, "SELECT count(*) FROM devices").Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows in A's devices = %d, %v; want 1", n, err)
		}
		var inB *string
		if err := b.QueryRow(ctx, "SELECT to_regclass('public.devices')::text").Scan(&inB); err != nil {
			t.Fatal(err)
		}
		if inB != nil {
			t.Errorf("table devices made in A is visible in B as %q", *inB)
		}

		for _, set := range []struct{ name, want string }{
			{"listen_addresses", host},
			{"port", port},
			{"fsync", "off"},
			{"synchronous_commit", "off"},
			{"full_page_writes", "off"},
			{"password_encryption", "scram-sha-256"},
		} {
			var got string
			if err := a.QueryRow(ctx, "SELECT current_setting($1)", set.name).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != set.want {
				t.Errorf("%s = %q, want %q", set.name, got, set.want)
			}
		}
	})

	t.Run("password required", func(t *testing.T) {
		ctx := daemontest.Context(t)
		u, err := url.Parse(s.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(u.User.Username(), "wrong-password")
		c, err := pgx.Connect(ctx, u.String())
		if err == nil {
			c.Close(ctx)
			t.Fatal("a wrong password logged in")
		}
		if !strings.Contains(err.Error(), "password authentication failed") {
			t.Errorf("wrong password: %v, want a password authentication failure", err)
		}
	})

	t.Run("listens only on its loopback address", func(t *testing.T) {
		got, err := listeners(s.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{s.Addr()}; !slices.Equal(got, want) {
			t.Errorf("postmaster listens on %v, want only %v", got, want)
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 2*time.Second); err == nil {
			c.Close()
			t.Errorf("127.0.0.1:%s accepts connections; the server should listen only on %s", port, host)
		}
	})

	t.Run("runs as the postgres user when root", func(t *testing.T) {
		daemontest.RequireRoot(t)
		pg, err := user.Lookup(systemUser)
		if err != nil {
			t.Fatal(err)
		}
		if uid := processUID(t, s.cmd.Process.Pid); uid != pg.Uid {
			t.Errorf("postmaster runs as uid %s, want %s (%s)", uid, pg.Uid, systemUser)
		}
	})

	// The subtests' cleanups dropped their databases.
	ctx := daemontest.Context(t)
	c := connect(t, s.DSN(t))
	for _, name := range names {
		var exists bool
		if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
	c.Close(ctx)

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(s.base); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data folder %s after Stop: %v, want it removed", s.base, err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr(), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", s.Addr())
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestShared(t *testing.T) {
	sh := NewShared()
	var first *Server
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			s := sh.Get(t)
			if first == nil {
				first = s
			} else if s != first {
				t.Fatalf("second Get started another server (%s, first %s)", s.Addr(), first.Addr())
			}
			ctx := daemontest.Context(t)
			c := connect(t, s.DSN(t))
			if _, err := c.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
				t.Fatalf("each test gets an empty database: %v", err)
			}
		})
	}
	if first == nil {
		t.Skip("no shared server started")
	}
	if err := sh.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(first.base); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data folder %s after Close: %v, want it removed", first.base, err)
	}
}

func TestSharedCloseUnused(t *testing.T) {
	if err := NewShared().Close(); err != nil {
		t.Errorf("Close of an unused Shared: %v", err)
	}
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// listeners returns the TCP addresses pid listens on, from its open
// sockets and the kernel's tables in /proc/net/tcp and tcp6.
func listeners(pid int) ([]string, error) {
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			addr, err := procAddr(fields[1])
			if err != nil {
				f.Close()
				return nil, err
			}
			out = append(out, addr)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return out, nil
}

// procAddr decodes /proc/net/tcp's "0100007F:1538": the address as 32-bit
// words in host (little-endian) order, the port in hex.
func procAddr(s string) (string, error) {
	ipHex, portHex, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(ipHex)
	if !ok || err != nil || len(raw)%4 != 0 {
		return "", errors.New("bad /proc/net/tcp address " + s)
	}
	for i := 0; i < len(raw); i += 4 {
		slices.Reverse(raw[i : i+4])
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return "", errors.New("bad /proc/net/tcp port " + s)
	}
	return net.JoinHostPort(net.IP(raw).String(), strconv.FormatUint(port, 10)), nil
}

func processUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return f[0]
			}
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return ""
}
