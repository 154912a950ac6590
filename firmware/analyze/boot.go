package analyze

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/unpack"
)

// BootServices finds what the image starts at boot that weakens it:
// telnet, FTP, TFTP and ADB daemons, telnet handing out a shell without a
// login, and a shell without login on a serial console. Sources: inittab,
// rcS/rc.local, init.d and rc.d scripts (SysV and OpenWrt procd), inetd
// and xinetd, systemd units.
type BootServices struct{}

// NewBootServices returns the analysis.
func NewBootServices() *BootServices { return &BootServices{} }

// Name implements Analyzer.
func (*BootServices) Name() string { return "boot-services" }

// isBootScript reports files that start things at boot.
func isBootScript(p string) bool {
	dir, base := path.Split(p)
	switch {
	case p == "/etc/inittab", p == "/etc/inetd.conf", p == "/etc/rc.local", p == "/etc/preinit",
		p == "/etc/profile", strings.HasPrefix(base, "rcS"):
		return true
	case strings.HasPrefix(dir, "/etc/init.d/"), strings.HasPrefix(dir, "/etc/rc.d/"),
		strings.HasPrefix(dir, "/etc/xinetd.d/"), strings.HasPrefix(dir, "/etc/init/"),
		strings.HasPrefix(dir, "/lib/preinit/"):
		return true
	case strings.HasPrefix(dir, "/etc/rc") && strings.HasSuffix(dir, ".d/"):
		return true
	case strings.HasSuffix(base, ".service") && (strings.Contains(dir, "/systemd/")):
		return true
	case p == "/etc/ssh/sshd_config", p == "/etc/config/dropbear":
		return true
	}
	return false
}

// Required implements Analyzer.
func (*BootServices) Required(p string, info fs.FileInfo) bool {
	return info.Mode().IsRegular() && info.Size() < 1<<20 && isBootScript(p)
}

// daemon is a service worth reporting when started at boot.
type daemon struct {
	names      []string
	service    string
	severity   finding.Severity
	provisions []string
	why        string
}

var daemons = []daemon{
	{[]string{"telnetd", "utelnetd", "in.telnetd"}, "telnet", finding.High, []string{"5.5-1", "5.6-1"},
		"telnet sends logins in clear text and is rarely needed in production"},
	{[]string{"adbd"}, "adb", finding.High, []string{"5.6-4", "5.6-1"},
		"Android Debug Bridge is a debug interface"},
	{[]string{"ftpd", "vsftpd", "bftpd", "pure-ftpd", "proftpd", "in.ftpd"}, "ftp", finding.Medium, []string{"5.5-1", "5.6-1"},
		"FTP sends logins and files in clear text"},
	{[]string{"tftpd", "in.tftpd", "atftpd"}, "tftp", finding.Medium, []string{"5.6-1"},
		"TFTP has no authentication at all"},
}

// allowedBefore are words that may precede a daemon on a line that
// starts it (as opposed to killing, grepping or echoing it).
var allowedBefore = map[string]bool{"busybox": true, "exec": true, "nohup": true, "start-stop-daemon": true,
	"procd_set_param": true, "command": true, "service_start": true, "&&": true, ";": true, "then": true,
	"do": true, "else": true, "ExecStart": true, "server": true, "tcpsvd": true, "udpsvd": true, "setsid": true}

// startedProgram returns the arguments of the program among names that a
// script line starts, and whether it starts one.
func startedProgram(line string, names ...string) ([]string, bool) {
	line = strings.TrimSpace(line)
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	line = strings.ReplaceAll(line, "ExecStart=", "ExecStart ")
	words := strings.Fields(line)
	for i, w := range words {
		base := path.Base(strings.Trim(w, `"'`))
		for _, n := range names {
			if base != n {
				continue
			}
			for _, p := range words[:i] {
				pb := path.Base(strings.Trim(p, `"'`))
				if !allowedBefore[pb] && !strings.HasPrefix(p, "-") && !strings.Contains(p, "=") &&
					!(len(pb) > 0 && pb[0] >= '0' && pb[0] <= '9') {
					return nil, false
				}
			}
			return words[i+1:], true
		}
	}
	return nil, false
}

// startedDaemon returns the daemon a script line starts and its argument
// words, if any.
func startedDaemon(line string) (*daemon, []string) {
	line = strings.TrimSpace(line)
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	line = strings.ReplaceAll(line, "ExecStart=", "ExecStart ")
	words := strings.Fields(line)
	for i, w := range words {
		base := path.Base(strings.Trim(w, `"'`))
		for d := range daemons {
			for _, n := range daemons[d].names {
				if base != n {
					continue
				}
				for _, p := range words[:i] {
					pb := path.Base(strings.Trim(p, `"'`))
					if !allowedBefore[pb] && !strings.HasPrefix(p, "-") && !strings.Contains(p, "=") &&
						!(len(pb) > 0 && pb[0] >= '0' && pb[0] <= '9') {
						return nil, nil
					}
				}
				return &daemons[d], words[i+1:]
			}
		}
	}
	return nil, nil
}

// shellNames are login-less shells.
var shellNames = map[string]bool{"sh": true, "ash": true, "bash": true, "hush": true, "msh": true, "dash": true, "-sh": true, "-ash": true, "-bash": true}

func isShell(word string) bool {
	return shellNames[path.Base(strings.TrimPrefix(strings.Trim(word, `"'`), "-"))] || shellNames[strings.Trim(word, `"'`)]
}

// factoryOnly reports scripts that start a service only while no root
// password is set (OpenWrt's failsafe telnet).
func factoryOnly(script string) bool {
	return strings.Contains(script, "has_root_pwd") || strings.Contains(script, "failsafe")
}

// Analyze implements Analyzer.
func (b *BootServices) Analyze(ctx context.Context, _ *unpack.Tree, files []*unpack.File) ([]finding.Finding, error) {
	var out []finding.Finding
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		text := string(f.Data())
		seen := map[string]bool{}
		enabled, how := scriptEnabled(f)
		add := func(fd finding.Finding) {
			if k := fd.Title; !seen[k] {
				seen[k] = true
				if !enabled {
					fd.Severity = finding.Info
					fd.Title += " (installed but not enabled)"
					fd.Evidence["enabled"] = false
					fd.Evidence["enabled_by"] = how
				}
				out = append(out, fd)
			}
		}
		if fd, handled := sshRootPasswords(f, text); handled {
			if fd.Check != "" {
				add(fd)
			}
			continue
		}
		for i, raw := range strings.Split(text, "\n") {
			line := strings.TrimSpace(raw)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if args, ok := startedProgram(line, "dropbear"); ok && !hasAnyFlag(args, "-s", "-g", "-w") {
				add(rootPasswordFinding(f, i+1, "dropbear started without -s, -g or -w", line))
			}
			switch {
			case f.Name == "/etc/inittab":
				if fd, ok := inittabShell(f, line, i+1); ok {
					add(fd)
				}
				if _, proc, ok := inittabProcess(line); ok {
					line = proc
				}
			case f.Name == "/etc/inetd.conf":
				line = inetdServer(line)
			}
			d, args := startedDaemon(line)
			if d == nil {
				continue
			}
			fd := serviceFinding(f, d, args, line, i+1, factoryOnly(text))
			add(fd)
		}
	}
	return out, nil
}

func serviceFinding(f *unpack.File, d *daemon, args []string, line string, lineNo int, factory bool) finding.Finding {
	ev := layerEvidence(f, map[string]any{"service": d.service, "line": lineNo, "command": redactCommand(line)})
	sev := d.severity
	title := fmt.Sprintf("%s server started at boot", strings.ToUpper(d.service[:1])+d.service[1:])
	if d.service == "telnet" {
		for i, a := range args {
			if a == "-l" && i+1 < len(args) && isShell(args[i+1]) {
				sev = finding.Critical
				title = "Telnet server started at boot gives a shell without login"
				ev["login_program"] = args[i+1]
			}
		}
	}
	if factory {
		ev["factory_state_only"] = true
		title += " (factory state: until a password is set)"
		if sev > finding.Medium {
			sev = finding.Medium
		}
	}
	return finding.Finding{Check: finding.CheckInsecureBootService, Provisions: d.provisions, Severity: sev,
		Title: title, Path: f.Path(), Evidence: ev,
		Remediation: "Do not start " + d.service + " in production firmware (" + d.why + "); use an authenticated, encrypted service if remote access is needed."}
}

// inittabProcess splits an inittab line (BusyBox "id::action:process" or
// SysV "id:runlevels:action:process").
func inittabProcess(line string) (action, process string, ok bool) {
	parts := strings.SplitN(line, ":", 4)
	if len(parts) != 4 {
		return "", "", false
	}
	return parts[2], strings.TrimSpace(parts[3]), true
}

// inittabShell reports a console shell started without a login.
func inittabShell(f *unpack.File, line string, lineNo int) (finding.Finding, bool) {
	action, proc, ok := inittabProcess(line)
	if !ok {
		return finding.Finding{}, false
	}
	switch action {
	case "respawn", "askfirst", "once", "wait", "sysinit":
	default:
		return finding.Finding{}, false
	}
	words := strings.Fields(proc)
	if len(words) == 0 {
		return finding.Finding{}, false
	}
	why := "shell started directly"
	switch prog := path.Base(strings.TrimPrefix(words[0], "-")); {
	case isShell(words[0]):
	case prog == "login" && hasWord(words[1:], "-f"):
		why = "login -f: logged in without a password"
	case strings.HasSuffix(prog, "getty") && getttyShell(words[1:]):
		why = "getty runs a shell as its login program"
	default:
		return finding.Finding{}, false
	}
	tty := strings.SplitN(line, ":", 2)[0]
	if tty == "" {
		tty = "console"
	}
	return finding.Finding{Check: finding.CheckInsecureBootService, Provisions: []string{"5.6-4", "5.6-1"},
		Severity: finding.High, Title: "Shell without login on the serial console (" + tty + ")",
		Path: f.Path(), Evidence: layerEvidence(f, map[string]any{"service": "console-shell", "line": lineNo, "entry": line, "tty": tty, "why": why}),
		Remediation: "Start a login prompt (getty/login) on the console, or disable it in production."}, true
}

// inetdServer returns the server program and its arguments of an
// inetd.conf line ("telnet stream tcp nowait root /usr/sbin/telnetd telnetd").
func inetdServer(line string) string {
	f := strings.Fields(line)
	if len(f) < 6 {
		return ""
	}
	return strings.Join(f[5:], " ")
}

// redactCommand hides passwords written into a command line (the
// hard-coded-credentials finding carries them, as secrets).
func redactCommand(line string) string {
	for _, re := range []*regexp.Regexp{reTelnetdUser, reChpasswd} {
		if m := re.FindStringSubmatchIndex(line); m != nil && m[4] >= 0 {
			line = line[:m[4]] + "****" + line[m[5]:]
		}
	}
	return line
}

// hasAnyFlag reports whether args hold one of the flags, alone or
// combined ("-sg").
func hasAnyFlag(args []string, flags ...string) bool {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--") {
			continue
		}
		for _, f := range flags {
			if strings.Contains(a[1:], f[1:]) && len(a) <= 4 {
				return true
			}
		}
	}
	return false
}

func rootPasswordFinding(f *unpack.File, line int, why, entry string) finding.Finding {
	return finding.Finding{Check: finding.CheckInsecureBootService, Provisions: []string{"5.6-1"}, Severity: finding.Low,
		Title: "SSH server accepts password logins for root", Path: f.Path(),
		Evidence:    layerEvidence(f, map[string]any{"service": "ssh", "line": line, "why": why, "entry": redactCommand(entry)}),
		Remediation: "Disable password logins for root (dropbear -g or -w, PermitRootLogin prohibit-password) and use per-unit keys."}
}

// sshRootPasswords judges sshd_config and OpenWrt's dropbear UCI config.
func sshRootPasswords(f *unpack.File, text string) (finding.Finding, bool) {
	switch f.Name {
	case "/etc/ssh/sshd_config":
		root, pw, line := "prohibit-password", "yes", 0
		for i, l := range strings.Split(text, "\n") {
			w := strings.Fields(l)
			if len(w) < 2 || strings.HasPrefix(w[0], "#") {
				continue
			}
			k := strings.ToLower(w[0])
			if k == "match" {
				break // only the global settings count
			}
			switch k {
			case "permitrootlogin":
				root, line = strings.ToLower(w[1]), i+1
			case "passwordauthentication":
				pw = strings.ToLower(w[1])
			}
		}
		if root == "yes" && pw != "no" {
			return rootPasswordFinding(f, line, "PermitRootLogin yes with password authentication", "PermitRootLogin yes"), true
		}
		return finding.Finding{}, true
	case "/etc/config/dropbear":
		pwAuth, rootAuth := true, true // dropbear's UCI defaults
		for _, l := range strings.Split(text, "\n") {
			m := reUCIAnyOption.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			on := m[2] == "on" || m[2] == "1" || m[2] == "yes"
			switch m[1] {
			case "PasswordAuth":
				pwAuth = on
			case "RootPasswordAuth":
				rootAuth = on
			}
		}
		if pwAuth && rootAuth {
			return rootPasswordFinding(f, 0, "PasswordAuth and RootPasswordAuth are on (the defaults)", "config dropbear"), true
		}
		return finding.Finding{}, true
	}
	return finding.Finding{}, false
}

var reUCIAnyOption = regexp.MustCompile(`^\s*option\s+(\S+)\s+['"]?([^'"\s]*)['"]?`)

// scriptEnabled tells whether a unit or init script is started at boot:
// systemd units need a link in a *.wants folder, OpenWrt scripts a
// /etc/rc.d/S??name link, SysV scripts an /etc/rc?.d/S??name link (when
// the image has those folders; BusyBox rcS setups run what they name).
func scriptEnabled(f *unpack.File) (bool, string) {
	dir, base := path.Split(f.Name)
	s := f.FS()
	switch {
	case strings.HasSuffix(base, ".service") && !strings.HasPrefix(dir, "/etc/systemd/system/"):
		for _, g := range s.Files() {
			if strings.Contains(g.Name, ".wants/") && path.Base(g.Name) == base {
				return true, g.Name
			}
		}
		return false, "no link in a systemd *.wants folder"
	case dir == "/etc/init.d/":
		hasRC, hasSysV := false, false
		for _, g := range s.Files() {
			gd, gb := path.Split(g.Name)
			isLink := len(gb) > 3 && gb[0] == 'S' && gb[1] >= '0' && gb[1] <= '9' && strings.TrimLeft(gb[1:], "0123456789") == base
			switch {
			case gd == "/etc/rc.d/":
				hasRC = true
				if isLink {
					return true, g.Name
				}
			case strings.HasPrefix(gd, "/etc/rc") && strings.HasSuffix(gd, ".d/") && gd != "/etc/rc.d/" && gd != "/etc/init.d/":
				hasSysV = true
				if isLink {
					return true, g.Name
				}
			}
		}
		if hasRC {
			return false, "no /etc/rc.d/S??" + base + " link"
		}
		if hasSysV {
			return false, "no /etc/rc?.d/S??" + base + " link"
		}
	}
	return true, ""
}

func hasWord(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

// getttyShell reports "getty -n -l /bin/sh"-style lines: no login
// prompt and a shell as the login program.
func getttyShell(args []string) bool {
	for i, a := range args {
		if a == "-l" && i+1 < len(args) && isShell(args[i+1]) {
			return true
		}
	}
	return false
}
