// Command cryptobench compares iotcop's weak-tls and weak-ssh checks with
// testssl.sh and ssh-audit on real servers, in one run: it starts weak and
// hardened TLS servers (openssl s_server at SECLEVEL=0 with TLS 1.0, NULL
// and anonymous suites and an expired certificate; lighttpd with GnuTLS
// serving RC4 and 3DES with a 1024-bit SHA-1 certificate; a hardened
// TLS 1.2+ s_server) and SSH servers (OpenSSH with legacy algorithms and a
// 1024-bit RSA key; Dropbear defaults; hardened OpenSSH) on loopback
// addresses; runs "iotcop scan" on each server, testssl.sh on each TLS
// server and ssh-audit on each SSH server (each tool on all its servers at
// once); and prints, per server, each tool's time and the weaknesses it
// names by category, what each names that the other does not, and totals
// with the time ratio. Run it as root through bench/crypto.sh. Traffic
// stays on 127.0.0.0/8.
package main

import (
	"bytes"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
)

func main() {
	iotcopBin := flag.String("iotcop", "", "iotcop binary (required)")
	keep := flag.Bool("keep", false, "keep the work directory (reports and logs)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("cryptobench: ")
	if *iotcopBin == "" {
		flag.Usage()
		os.Exit(2)
	}
	t := daemontest.StartProgram("cryptobench", *keep)
	dir := t.Dir
	b := bench{t: t, dir: dir, iotcop: *iotcopBin}
	b.run()
	t.Close()
}

// server is one server under test.
type server struct {
	label string
	kind  string // "tls" or "ssh"
	svc   daemontest.Service
}

type bench struct {
	t      *daemontest.ProgramTB
	dir    string
	iotcop string
}

func (b *bench) run() {
	t := b.t
	expired := daemontest.CertSpec{Bits: 2048, NotBefore: time.Now().Add(-60 * 24 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour), CoverHost: true}
	weakKey := daemontest.CertSpec{Bits: 1024, SigAlg: x509.SHA1WithRSA, CoverHost: true}
	good := daemontest.CertSpec{Bits: 2048, CoverHost: true}
	servers := []server{
		{label: "tls-openssl-legacy", kind: "tls"},
		{label: "tls-gnutls-rc4-3des", kind: "tls"},
		{label: "tls-hardened", kind: "tls"},
		{label: "ssh-openssh-legacy", kind: "ssh"},
		{label: "ssh-dropbear", kind: "ssh"},
		{label: "ssh-openssh-hardened", kind: "ssh"},
	}
	daemontest.StartAll(t,
		func(t daemontest.TB) {
			servers[0].svc = daemontest.OpenSSLServer(t, expired, "-min_protocol", "TLSv1", "-cipher", "ALL:eNULL:@SECLEVEL=0")
		},
		func(t daemontest.TB) {
			servers[1].svc = daemontest.LighttpdTLS(t, "mod_gnutls",
				`ssl.openssl.ssl-conf-cmd = ("gnutls-override" => "NORMAL:+3DES-CBC:+ARCFOUR-128:+RSA:+VERS-TLS1.0:+VERS-TLS1.1:+SHA1:+MD5:%NO_TICKETS")`, weakKey)
		},
		func(t daemontest.TB) {
			servers[2].svc = daemontest.OpenSSLServer(t, good, "-min_protocol", "TLSv1.2", "-cipher", "ECDHE+AESGCM:ECDHE+CHACHA20")
		},
		func(t daemontest.TB) {
			servers[3].svc = daemontest.OpenSSHNoLogin(t, []string{"rsa:1024", "dsa", "ed25519"}, `KexAlgorithms +diffie-hellman-group1-sha1
Ciphers +aes128-cbc,3des-cbc
MACs +hmac-md5
HostKeyAlgorithms +ssh-rsa,ssh-dss
RequiredRSASize 1024
`)
		},
		func(t daemontest.TB) { servers[4].svc = daemontest.DropbearDefaults(t) },
		func(t daemontest.TB) {
			servers[5].svc = daemontest.OpenSSHNoLogin(t, []string{"rsa:3072", "ed25519"}, `KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr
MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com
HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256
`)
		},
	)

	fmt.Printf("machine: %d cores, %s; testssl.sh %s, ssh-audit %s (Debian packages)\n", runtime.NumCPU(), kernel(), version("testssl.sh"), version("ssh-audit"))
	fmt.Println("iotcop: \"iotcop scan --checks weak-tls,weak-ssh -p T:PORT HOST\" (port check, identification and the two audits), one process per server")
	for _, s := range servers {
		fmt.Printf("  %-22s %s\n", s.label, s.svc.Addr())
	}
	fmt.Println()

	var tlsServers, sshServers []server
	for _, s := range servers {
		if s.kind == "tls" {
			tlsServers = append(tlsServers, s)
		} else {
			sshServers = append(sshServers, s)
		}
	}
	// Each tool runs on all its servers at once; the tools one after the
	// other, so they never compete for the servers or the CPU.
	iotcopAll, iotcopTook, iotcopOut := b.runAll("iotcop", servers, func(s server, out string) *exec.Cmd {
		return exec.Command(b.iotcop, "scan", "-q", "--format", "json", "-o", out, "--fail-on", "none",
			"--checks", "weak-tls,weak-ssh", "-p", "T:"+strconv.Itoa(s.svc.Port), s.svc.Host)
	}, nil)
	testsslAll, testsslTook, testsslOut := b.runAll("testssl", tlsServers, func(s server, out string) *exec.Cmd {
		return exec.Command("testssl", "--jsonfile", out, "--quiet", "--warnings", "off", "--color", "0", s.svc.Addr())
	}, nil)
	auditAll, auditTook, auditOut := b.runAll("ssh-audit", sshServers, func(s server, _ string) *exec.Cmd {
		// ssh-audit 2.5's JSON (-j) lists the algorithms without its
		// verdicts; its text report (-n) carries them.
		return exec.Command("ssh-audit", "-n", "-t", "10", s.svc.Addr())
	}, func(out []byte, path string) { _ = os.WriteFile(path, out, 0o600) })

	var tot totals
	ti, si := 0, 0
	for i, s := range servers {
		ours := parseIotcop(t, iotcopOut[i], s.kind)
		var theirs weaknesses
		var took time.Duration
		tool := "testssl.sh"
		if s.kind == "tls" {
			theirs, took = parseTestssl(t, testsslOut[ti]), testsslTook[ti]
			ti++
		} else {
			tool = "ssh-audit"
			theirs, took = parseSSHAudit(t, auditOut[si]), auditTook[si]
			si++
		}
		tot.add(s, ours, theirs, iotcopTook[i], took, tool)
	}
	tot.print(iotcopAll, testsslAll, auditAll)
}

// runAll runs the tool once per server, all at once, and returns the wall
// time of the whole, that of each server and the output files. save, if
// set, stores the tool's standard output as the output file.
func (b *bench) runAll(tool string, servers []server, command func(s server, out string) *exec.Cmd, save func(out []byte, path string)) (time.Duration, []time.Duration, []string) {
	files := make([]string, len(servers))
	took := make([]time.Duration, len(servers))
	var wg sync.WaitGroup
	start := time.Now()
	for i, s := range servers {
		files[i] = filepath.Join(b.dir, tool+"-"+s.label+".out")
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := command(s, files[i])
			cmd.Dir = b.dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			// Its own process group, so that an interrupted run stops the
			// tool's children (testssl.sh runs openssl) with it.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			st := time.Now()
			if err := cmd.Start(); err != nil {
				b.t.Fatalf("%s on %s: %v", tool, s.label, err)
			}
			done := make(chan struct{})
			b.t.Cleanup(func() {
				select {
				case <-done:
				default:
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				}
			})
			err := cmd.Wait()
			close(done)
			took[i] = time.Since(st)
			if save != nil {
				save(stdout.Bytes(), files[i])
			}
			_ = os.WriteFile(filepath.Join(b.dir, tool+"-"+s.label+".log"), append(stdout.Bytes(), stderr.Bytes()...), 0o600)
			// testssl and ssh-audit exit non-zero when they find problems.
			if _, statErr := os.Stat(files[i]); statErr != nil {
				b.t.Fatalf("%s on %s: %v (%v)\n%s", tool, s.label, statErr, err, tail(stdout.String()+stderr.String(), 800))
			}
		}()
	}
	wg.Wait()
	return time.Since(start), took, files
}

// version returns a Debian package's version.
func version(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		return "(version unknown)"
	}
	return string(out)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return "Linux " + strings.TrimSpace(string(b))
}

func sorted(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
