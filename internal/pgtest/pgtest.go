// Package pgtest starts a real, throw-away PostgreSQL server from Debian's
// packages for tests, on a loopback address of its own (daemontest.Addr).
//
// Use Start for a server that lives as long as one test, or a Shared value
// (NewShared) for one server that every test of a package uses, started
// lazily by the first test that asks and stopped by the package's TestMain:
//
//	var pg = pgtest.NewShared()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		if err := pg.Close(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//		}
//		os.Exit(code)
//	}
//
//	func TestStore(t *testing.T) {
//		dsn := pg.Get(t).DSN(t) // a new empty database for this test
//		...
//	}
//
// Each call of Server.DSN creates a new empty database, so tests sharing a
// server never see each other's tables. The server runs with fsync off: it
// is fast and loses everything on a crash, which is all a test needs.
//
// As root the server runs as Debian's "postgres" system user (PostgreSQL
// refuses to run as root); a missing package is installed with apt-get as
// root, and the test is skipped otherwise.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/jackc/pgx/v5"
)

const (
	// libDir is where Debian installs each PostgreSQL major version:
	// /usr/lib/postgresql/<major>/bin holds initdb and postgres, which
	// are not in PATH.
	libDir = "/usr/lib/postgresql"
	// superuser is the account initdb creates; DSNs log in as it.
	superuser = "iotcop"
	// systemUser runs the server when the tests run as root.
	systemUser = "postgres"

	readyTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// Server is a running PostgreSQL server. Its methods are safe for
// concurrent use.
type Server struct {
	host     string
	port     int
	password string
	base     string // temp folder: data/, sock/, the password file
	cmd      *exec.Cmd
	out      *logBuffer
	exited   chan struct{} // closed when the postmaster has exited
	waitErr  error         // the postmaster's exit status, set before exited closes
	dbSeq    atomic.Uint64
	shared   bool // DSN's cleanup shows the log tail when a test fails
	stopOnce sync.Once
	stopErr  error
}

// Start starts a throw-away PostgreSQL server for the test on a fresh
// 127.x.y.z address (daemontest.Addr) and stops it, removing its data,
// when the test ends. It installs Debian's postgresql package when it is
// missing and the test runs as root, and skips the test otherwise. It
// fails the test, with the tail of the server's log, when the server does
// not start accepting connections.
func Start(t daemontest.TB) *Server {
	t.Helper()
	bin := requireBinDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := start(ctx, bin)
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("PostgreSQL log (tail):\n%s", s.out.tail(40))
		}
		if err := s.Stop(); err != nil {
			t.Logf("stop PostgreSQL: %v", err)
		}
	})
	return s
}

// Addr is the server's TCP address, "127.x.y.z:port".
func (s *Server) Addr() string {
	return net.JoinHostPort(s.host, strconv.Itoa(s.port))
}

// DSN creates a new, empty database with a unique name and returns its
// connection string, "postgres://user:password@127.x.y.z:port/name?sslmode=disable".
// The user is a superuser of this server (it may create schemas, roles
// and extensions). The database is dropped when the test ends, after the
// test's own cleanups registered later (such as closing its pool) have run.
func (s *Server) DSN(t daemontest.TB) string {
	t.Helper()
	name := s.dbName(testName(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() && s.shared {
			t.Logf("PostgreSQL log (tail):\n%s", s.out.tail(40))
		}
		select {
		case <-s.exited:
			return // stopped already: the data is gone
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends connections the test left open.
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return s.dsn(name)
}

// Stop shuts the server down (a fast shutdown: open sessions are ended)
// and removes its data. Start's cleanup calls it; calling it again does
// nothing and returns the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

// Shared is one server for all the tests of a package, started by the
// first Get and stopped by Close (from TestMain, after m.Run). Make it
// with NewShared.
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// NewShared returns a Shared whose server is not started yet.
func NewShared() *Shared { return &Shared{} }

// Get returns the shared server, starting it on the first call. It skips
// or fails the test as Start does; a server that failed to start fails
// every test that asks for it, with the same error.
func (sh *Shared) Get(t daemontest.TB) *Server {
	t.Helper()
	// Outside the Once: Require may skip the test (runtime.Goexit), which
	// must not leave the Once done with no server.
	bin := requireBinDir(t)
	sh.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		sh.srv, sh.err = start(ctx, bin)
		if sh.srv != nil {
			sh.srv.shared = true
		}
	})
	if sh.err != nil {
		t.Fatalf("start shared PostgreSQL: %v", sh.err)
	}
	return sh.srv
}

// RunTests runs a package's tests (m is its *testing.M) and then stops the
// shared server, for TestMain: os.Exit(pg.RunTests(m)).
func (sh *Shared) RunTests(m interface{ Run() int }) int {
	code := m.Run()
	if err := sh.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return code
}

// Close stops the shared server if Get started it.
func (sh *Shared) Close() error {
	sh.once.Do(func() { sh.err = errors.New("pgtest: shared server used after Close") })
	if sh.srv == nil {
		return nil
	}
	return sh.srv.Stop()
}

// requireBinDir finds the newest PostgreSQL's bin folder, installing
// Debian's postgresql package first when none is there (root), or
// skipping the test (not root).
func requireBinDir(t daemontest.TB) string {
	t.Helper()
	if dir, err := newestBinDir(libDir); err == nil {
		return dir
	}
	// The pattern never exists as a file, so Require installs the package
	// or skips the test with its usual message.
	daemontest.Require(t, filepath.Join(libDir, "*", "bin", "initdb")+"=postgresql")
	dir, err := newestBinDir(libDir)
	if err != nil {
		t.Fatalf("after installing postgresql: %v", err)
	}
	return dir
}

// newestBinDir returns root/<major>/bin of the highest version that has
// both initdb and postgres.
func newestBinDir(root string) (string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return "", fmt.Errorf("find PostgreSQL versions: %w", err)
	}
	var best string
	var bestVer []int
	for _, e := range entries {
		ver, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		bin := filepath.Join(root, e.Name(), "bin")
		if !executable(filepath.Join(bin, "initdb")) || !executable(filepath.Join(bin, "postgres")) {
			continue
		}
		if best == "" || slices.Compare(ver, bestVer) > 0 {
			best, bestVer = bin, ver
		}
	}
	if best == "" {
		return "", fmt.Errorf("no PostgreSQL with bin/initdb and bin/postgres under %s", root)
	}
	return best, nil
}

// parseVersion reads a folder name such as "15" or "9.6".
func parseVersion(name string) ([]int, bool) {
	var ver []int
	for part := range strings.SplitSeq(name, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		ver = append(ver, n)
	}
	return ver, true
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// account is who runs initdb and postgres: nil means this process's own
// user (not root); otherwise Debian's postgres user.
func account() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(systemUser)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root and the %q user (made by Debian's postgresql package) is missing: %w", systemUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("read the ids of user %q: %w", systemUser, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// tempRoot picks a folder for the server's data that the postgres user
// can reach: TMPDIR when every folder on its path is searchable by
// others, /tmp otherwise.
func tempRoot(cred *syscall.Credential) (string, error) {
	if cred == nil {
		return os.TempDir(), nil
	}
	for _, dir := range []string{os.TempDir(), "/tmp"} {
		if reachable(dir, cred.Uid) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("neither %s nor /tmp can be reached by user %s (a folder on the way is not searchable by others)", os.TempDir(), systemUser)
}

// reachable says whether uid can search every folder from / down to dir
// through the "other" or owner permission bits.
func reachable(dir string, uid uint32) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		if fi.Mode().Perm()&0o001 == 0 && (st.Uid != uid || fi.Mode().Perm()&0o100 == 0) {
			return false
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

// start makes a cluster in a new temp folder and runs postgres on a fresh
// loopback address until it accepts connections.
func start(ctx context.Context, bin string) (s *Server, err error) {
	cred, err := account()
	if err != nil {
		return nil, err
	}
	root, err := tempRoot(cred)
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp(root, "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("make the server's temp folder: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(base)
		}
	}()
	s = &Server{host: daemontest.Addr(), password: daemontest.StrongPassword(), base: base, out: &logBuffer{}}
	data, sock, pwfile := filepath.Join(base, "data"), filepath.Join(base, "sock"), filepath.Join(base, "pwfile")
	if err := os.Mkdir(sock, 0o700); err != nil {
		return nil, fmt.Errorf("make the socket folder: %w", err)
	}
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write the password file: %w", err)
	}
	if cred != nil {
		for _, p := range []string{base, sock, pwfile} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("give %s to user %s: %w", p, systemUser, err)
			}
		}
	}

	initdb := command(ctx, cred, base, filepath.Join(bin, "initdb"),
		"--pgdata="+data, "--username="+superuser, "--pwfile="+pwfile,
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb in %s: %w\n%s", data, err, tail(out, 40))
	}
	// Password logins only, over the socket and from loopback.
	hba := "local all all scram-sha-256\nhost all all 127.0.0.0/8 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, fmt.Errorf("write pg_hba.conf: %w", err)
	}
	if cred != nil {
		if err := os.Chown(filepath.Join(data, "pg_hba.conf"), int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("give pg_hba.conf to user %s: %w", systemUser, err)
		}
	}

	s.port, err = pickPort(s.host)
	if err != nil {
		return nil, err
	}
	// Not bound to ctx: the server outlives Start.
	s.cmd = command(context.Background(), cred, base, filepath.Join(bin, "postgres"),
		"-D", data,
		"-c", "listen_addresses="+s.host,
		"-c", "port="+strconv.Itoa(s.port),
		"-c", "unix_socket_directories="+sock,
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "synchronous_commit=off",
		"-c", "shared_buffers=16MB",
		"-c", "max_connections=100",
		"-c", "logging_collector=off",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// If the test binary dies without its cleanups (a timeout panic, a
	// kill), the postmaster gets SIGQUIT and stops with its children.
	s.cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := s.run(); err != nil {
		return nil, fmt.Errorf("run %s: %w", s.cmd.Path, err)
	}
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// command prepares a PostgreSQL program run as cred (nil: as ourselves)
// in dir, without PG* variables of the caller's environment.
func command(ctx context.Context, cred *syscall.Credential, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir // the caller's working folder may be closed to the postgres user
	env := []string{"LC_ALL=C", "TZ=UTC"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PATH" {
			env = append(env, kv)
		}
	}
	if cred != nil {
		env = append(env, "HOME="+dir, "USER="+systemUser, "LOGNAME="+systemUser)
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd
}

// run starts the postmaster from a goroutine locked to its OS thread for
// the postmaster's whole life: Pdeathsig fires when the thread that
// started the child exits, and a locked thread is never reused.
func (s *Server) run() error {
	started := make(chan error, 1)
	s.exited = make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	return <-started
}

// pickPort returns PostgreSQL's usual port when it is free on host, any
// free port otherwise.
func pickPort(host string) (int, error) {
	if ln, err := net.Listen("tcp", net.JoinHostPort(host, "5432")); err == nil {
		ln.Close()
		return 5432, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls with real logins until the server accepts them.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, s.dsn("postgres"))
		if err == nil {
			err = conn.Ping(cctx)
			_ = conn.Close(cctx)
		}
		ccancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-s.exited:
			return fmt.Errorf("postgres on %s exited (%v) before accepting connections; log:\n%s", s.Addr(), s.waitErr, s.out.tail(40))
		case <-ctx.Done():
			return fmt.Errorf("postgres on %s did not accept connections within %v (last error: %v); log:\n%s", s.Addr(), readyTimeout, last, s.out.tail(40))
		case <-tick.C:
		}
	}
}

// stop asks for a fast shutdown, escalates to an immediate one and a kill
// if the server does not exit, then removes the data.
func (s *Server) stop() error {
	var errs []error
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL} {
		if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("signal postgres (%v): %w", sig, err))
		}
		timer := time.NewTimer(stopTimeout)
		select {
		case <-s.exited:
			timer.Stop()
			if err := os.RemoveAll(s.base); err != nil {
				errs = append(errs, fmt.Errorf("remove the server's folder: %w", err))
			}
			return errors.Join(errs...)
		case <-timer.C:
			errs = append(errs, fmt.Errorf("postgres on %s still running %v after %v", s.Addr(), stopTimeout, sig))
		}
	}
	return errors.Join(append(errs, fmt.Errorf("postgres on %s did not exit; its data stays in %s", s.Addr(), s.base))...)
}

func (s *Server) dsn(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superuser, s.password),
		Host:     s.Addr(),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// exec runs one statement in the maintenance database.
func (s *Server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.Addr(), err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// testName is the part of the test's name a database name can carry.
func testName(t daemontest.TB) string {
	if n, ok := t.(interface{ Name() string }); ok {
		return n.Name()
	}
	return ""
}

// dbName makes a unique database name that shows which test made it:
// "t<seq>_<test name>", at most 63 bytes (PostgreSQL's identifier limit).
func (s *Server) dbName(test string) string {
	name := fmt.Sprintf("t%d", s.dbSeq.Add(1))
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(test))
	for strings.Contains(clean, "__") {
		clean = strings.ReplaceAll(clean, "__", "_")
	}
	if clean = strings.Trim(clean, "_"); clean != "" {
		name += "_" + clean
	}
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// logBuffer keeps the server's output, up to 1 MiB.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 1<<20 {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *logBuffer) tail(lines int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return tail(b.buf.Bytes(), lines)
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	s := strings.TrimRight(string(out), "\n")
	if s == "" {
		return "(empty)"
	}
	ls := strings.Split(s, "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
