// Command credsbench compares iotcop's credential checks with hydra's on
// real daemons, in one run: it starts busybox telnetd, dropbear, vsftpd
// (local account) and busybox httpd (Basic authentication) on loopback
// addresses, each taking one valid pair, plus a hostile telnet server whose
// every password gets a "# " prompt; writes one credential list with the
// valid pair last; runs "iotcop scan --creds --aggressive" over all targets
// and hydra (one process per target, all at once) at the given parallelism;
// and prints wall times, ratios and found/missed/false per target through
// bench/compare. Run it as root (chroot, private mount namespaces) through
// bench/creds.sh. Traffic stays on 127.0.0.0/8.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iotcop/iotcop/creds"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

func main() {
	iotcopBin := flag.String("iotcop", "", "iotcop binary (required)")
	compareBin := flag.String("compare", "", "bench/compare binary (required)")
	tasks := flag.Int("tasks", 4, "hydra's parallel connections per target (-t)")
	pairs := flag.Int("pairs", 40, "credential list length, the valid pair last")
	keep := flag.Bool("keep", false, "keep the work directory (list, reports, hydra logs)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("credsbench: ")
	if *iotcopBin == "" || *compareBin == "" || *pairs < 2 {
		flag.Usage()
		os.Exit(2)
	}
	t := daemontest.StartProgram("credsbench", *keep)
	dir := t.Dir
	b := bench{t: t, dir: dir, iotcop: *iotcopBin, compare: *compareBin, tasks: *tasks}
	b.run(*pairs)
	t.Close()
}

// target is one service under test and how hydra names it.
type target struct {
	label string
	svc   daemontest.Service
	hydra string // hydra target URL
}

type bench struct {
	t               *daemontest.ProgramTB
	dir             string
	iotcop, compare string
	tasks           int
}

func (b *bench) run(pairs int) {
	t := b.t
	valid := proto.Credential{Username: "admin", Password: daemontest.StrongPassword()}
	targets := make([]target, 5)
	daemontest.StartAll(t,
		func(t daemontest.TB) {
			targets[0] = target{label: "telnet", svc: daemontest.BusyboxTelnetd(t, daemontest.TelnetdOptions{User: valid.Username, Password: valid.Password})}
		},
		func(t daemontest.TB) {
			targets[1] = target{label: "ssh", svc: daemontest.Dropbear(t, daemontest.DropbearOptions{User: valid.Username, Password: valid.Password})}
		},
		func(t daemontest.TB) {
			targets[2] = target{label: "ftp", svc: daemontest.Vsftpd(t, daemontest.VsftpdOptions{User: valid.Username, Password: valid.Password,
				Files: map[string]string{"readme.txt": "nas share\n"}, FailDelay: true})}
		},
		func(t daemontest.TB) {
			targets[3] = target{label: "http", svc: daemontest.BusyboxHttpd(t, daemontest.BusyboxHttpdOptions{
				Auth:  daemontest.HTTPAuth{User: valid.Username, Password: valid.Password},
				Files: map[string]string{"index.html": "<html><title>IP Camera</title></html>"}})}
		},
		func(t daemontest.TB) {
			targets[4] = target{label: "fake-prompt", svc: daemontest.FakePromptTelnet(t, daemontest.Listen{})}
		},
	)
	for i, module := range []string{"telnet", "ssh", "ftp", "http-get", "telnet"} {
		targets[i].hydra = module + "://" + targets[i].svc.Addr()
		if module == "http-get" {
			targets[i].hydra += "/" // the page asking for Basic authentication
		}
	}

	list := b.writeList(valid, pairs)
	var expect strings.Builder
	for _, tg := range targets {
		u, p := tg.svc.Username, tg.svc.Password
		if u == "" {
			u, p = "-", "-"
		}
		fmt.Fprintf(&expect, "%s %s %d %s %s\n", tg.label, tg.svc.Host, tg.svc.Port, u, p)
	}
	expectPath := b.write("expect.txt", expect.String())

	out, _ := exec.Command("hydra", "-h").CombinedOutput()
	hydraVersion, _, _ := strings.Cut(string(out), " (c)")
	fmt.Printf("machine: %d cores, %s; %s\n", runtime.NumCPU(), kernel(), hydraVersion)
	fmt.Printf("list: %d user:pass pairs, the valid one last; hydra -t %d per target; iotcop --aggressive (4 login sessions per service)\n", pairs, b.tasks)
	for _, tg := range targets {
		fmt.Printf("  %-12s %s\n", tg.label, tg.svc.Addr())
	}
	fmt.Println()

	args := []string{"creds", "-expect", expectPath}
	for _, tool := range []struct {
		name string
		cmd  func(tg target, out string) *exec.Cmd
	}{
		{"iotcop", func(tg target, out string) *exec.Cmd {
			return exec.Command(b.iotcop, "scan", "-q", "--creds", list, "--aggressive", "--show-secrets",
				"--format", "json", "-o", out, "--fail-on", "none", "-p", "T:"+strconv.Itoa(tg.svc.Port), tg.svc.Host)
		}},
		{"hydra", func(tg target, out string) *exec.Cmd {
			return exec.Command("hydra", "-I", "-t", strconv.Itoa(b.tasks), "-C", list, "-b", "json", "-o", out, tg.hydra)
		}},
	} {
		total, took, files := b.runAll(tool.name, targets, tool.cmd)
		args = append(args, "-time", fmt.Sprintf("%s=%.3f", tool.name, total.Seconds()))
		for i, tg := range targets {
			args = append(args, "-time", fmt.Sprintf("%s/%s=%.3f", tool.name, tg.label, took[i].Seconds()), "-"+tool.name, files[i])
		}
	}
	cmd := exec.Command(b.compare, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("compare: %v", err)
	}
}

// writeList writes the dictionary's first pairs (those with a username,
// as hydra needs) and the valid pair last.
func (b *bench) writeList(valid proto.Credential, n int) string {
	dict, err := creds.Builtin()
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	var lines []string
	for _, c := range dict.For("telnet", "") {
		if len(lines) == n-1 {
			break
		}
		if c.Username != "" && c != valid {
			lines = append(lines, c.String())
		}
	}
	lines = append(lines, valid.String())
	return b.write("creds.txt", strings.Join(lines, "\n")+"\n")
}

func (b *bench) write(name, content string) string {
	return daemontest.WriteFile(b.t, b.dir, name, content, 0o600)
}

// runAll runs the tool once per target, all at once (each tool assesses
// every target at the same time), and returns the wall time of the whole,
// that of each target and the JSON output files.
func (b *bench) runAll(tool string, targets []target, command func(tg target, out string) *exec.Cmd) (time.Duration, []time.Duration, []string) {
	files := make([]string, len(targets))
	took := make([]time.Duration, len(targets))
	var wg sync.WaitGroup
	start := time.Now()
	for i, tg := range targets {
		files[i] = filepath.Join(b.dir, tool+"-"+tg.label+".json")
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := command(tg, files[i])
			cmd.Dir = b.dir // hydra.restore
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			s := time.Now()
			err := cmd.Run()
			took[i] = time.Since(s)
			_ = os.WriteFile(filepath.Join(b.dir, tool+"-"+tg.label+".log"), out.Bytes(), 0o600)
			if _, statErr := os.Stat(files[i]); err != nil || statErr != nil {
				b.t.Fatalf("%s on %s: %v\n%s", tool, tg.label, err, tail(out.String(), 800))
			}
		}()
	}
	wg.Wait()
	return time.Since(start), took, files
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
