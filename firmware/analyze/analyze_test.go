package analyze

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/unpack"
	"github.com/iotcop/iotcop/internal/daemontest"
)

func TestStartedDaemon(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line, want string
	}{
		{"/usr/sbin/telnetd -l /bin/sh &", "telnet"},
		{"busybox telnetd -p 23", "telnet"},
		{"start-stop-daemon -S -x /usr/sbin/telnetd -- -F", "telnet"},
		{"procd_set_param command /usr/sbin/telnetd -F -l /bin/login.sh", "telnet"},
		{"ExecStart=/usr/sbin/in.telnetd", "telnet"},
		{"[ -x /sbin/adbd ] && /sbin/adbd &", ""},
		{"adbd &", "adb"},
		{"udpsvd -vE 0 69 tftpd /srv", "tftp"},
		{"vsftpd /etc/vsftpd.conf &", "ftp"},
		{"killall telnetd", ""},
		{"echo starting telnetd", ""},
		{"grep -q telnetd /proc/1/cmdline", ""},
		{"rm -f /usr/sbin/telnetd", ""},
		{"dropbear -s -g", ""},
		{"telnetd_enabled=1", ""},
	} {
		d, _ := startedDaemon(tc.line)
		got := ""
		if d != nil {
			got = d.service
		}
		if got != tc.want {
			t.Errorf("startedDaemon(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestHashScheme(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]string{
		"$1$abc$def": "md5-crypt", "$5$x$y": "sha256-crypt", "$6$x$y": "sha512-crypt", "$2b$10$abc": "bcrypt",
		"$y$j9T$x$y": "yescrypt", "$apr1$a$b": "apr1", "abJnggxhB/yWI": "des-crypt", "": "", "x": "", "!": "",
		"not a hash!!": "",
	} {
		if got := hashScheme(h); got != want {
			t.Errorf("hashScheme(%q) = %q, want %q", h, got, want)
		}
	}
	for _, h := range []string{"!", "!!", "*", "!$1$abc$def", "x", "*LK*"} {
		if !locked(h) {
			t.Errorf("locked(%q) = false", h)
		}
	}
}

// A hash with an absurd round count must not make the analysis hang.
func TestHostileRoundsAreBounded(t *testing.T) {
	t.Parallel()
	dict := Dictionary()
	for _, h := range []string{
		"$6$rounds=999999999$salt$abc", "$5$rounds=5000000$salt$abc", "$2a$31$abcdefghijklmnopqrstuuKyf5GcMPjWyjaB7ZmKwXNn5OkMOYb1O",
		"$6$rounds=$salt$abc", "$6$rounds=12",
	} {
		start := time.Now()
		w, err := crack(context.Background(), "root", h, dict)
		if err != errNoCrack || w.List != "" {
			t.Errorf("crack(%q) = %v, %v; want errNoCrack", h, w, err)
		}
		_ = start
	}
	if _, n := attemptsFor("$6$rounds=100000$s$h", len(dict)); n >= len(dict) || n < 20 {
		t.Errorf("100000 rounds: %d attempts, want fewer than the whole dictionary", n)
	}
	if len(dict) < 500 {
		t.Errorf("dictionary has %d words", len(dict))
	}
}

func treeOf(t *testing.T, files map[string]string) *unpack.Tree {
	t.Helper()
	tree, err := unpack.Data(context.Background(), tarOf(t, files), unpack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestLibraryMentioningPrivateKeyIsNoFinding(t *testing.T) {
	t.Parallel()
	tree := treeOf(t, map[string]string{
		"usr/lib/libssl.so": "\x7fELF\x00-----BEGIN RSA PRIVATE KEY-----\x00-----BEGIN %s-----\x00-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"etc/ssl/cert.pem":  "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n",
		"bin/blob":          "\x00\x00\x00\x07ssh-rsa\x00\x00\x00\x01\x03",
	})
	fs, err := Run(context.Background(), tree, []Analyzer{NewPrivateKeys()})
	if err != nil || len(fs) != 0 {
		t.Errorf("findings %v, err %v; want none", fs, err)
	}
}

func TestFactoryStateTelnet(t *testing.T) {
	t.Parallel()
	tree := treeOf(t, map[string]string{
		"etc/init.d/telnet": "#!/bin/sh /etc/rc.common\nhas_root_pwd() { grep -qs '^root:[!x]\\?:' /etc/shadow; }\nstart_service() {\n  has_root_pwd && return\n  procd_set_param command /usr/sbin/telnetd -F -l /bin/login.sh\n}\n",
	})
	fs, err := Run(context.Background(), tree, []Analyzer{NewBootServices()})
	if err != nil || len(fs) != 1 {
		t.Fatalf("findings %v, err %v", fs, err)
	}
	if fs[0].Severity != finding.Medium || fs[0].Evidence["factory_state_only"] != true || !strings.Contains(fs[0].Title, "factory state") {
		t.Errorf("factory-state telnet: %+v", fs[0])
	}
}

func TestSSHRootPasswordLogin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int
	}{
		{"sshd root yes", map[string]string{"etc/ssh/sshd_config": "Port 22\nPermitRootLogin yes\n"}, 1},
		{"sshd root yes, no passwords", map[string]string{"etc/ssh/sshd_config": "PermitRootLogin yes\nPasswordAuthentication no\n"}, 0},
		{"sshd defaults", map[string]string{"etc/ssh/sshd_config": "Port 22\n"}, 0},
		{"sshd root only in a Match block", map[string]string{"etc/ssh/sshd_config": "Match Address 10.0.0.1\n PermitRootLogin yes\n"}, 0},
		{"openwrt dropbear defaults", map[string]string{"etc/config/dropbear": "config dropbear\n\toption PasswordAuth 'on'\n\toption Port '22'\n"}, 1},
		{"openwrt dropbear root off", map[string]string{"etc/config/dropbear": "config dropbear\n\toption RootPasswordAuth 'off'\n"}, 0},
		{"dropbear started plain", map[string]string{"etc/init.d/S50dropbear": "#!/bin/sh\n/usr/sbin/dropbear -p 22 -r /etc/dropbear/key\n"}, 1},
		{"dropbear -g", map[string]string{"etc/init.d/S50dropbear": "dropbear -g -p 22\n"}, 0},
		{"dropbear -sw", map[string]string{"etc/init.d/S50dropbear": "dropbear -sw\n"}, 0},
	} {
		tree := treeOf(t, tc.files)
		fs, err := Run(context.Background(), tree, []Analyzer{NewBootServices()})
		if err != nil || len(fs) != tc.want {
			t.Errorf("%s: %d findings (%v), want %d", tc.name, len(fs), fs, tc.want)
		}
	}
}

func TestDisabledScriptsAreInfo(t *testing.T) {
	t.Parallel()
	start := "#!/bin/sh /etc/rc.common\nstart_service() {\n  procd_set_param command /usr/sbin/telnetd -F\n}\n"
	for _, tc := range []struct {
		name    string
		files   map[string]string
		enabled bool
	}{
		{"openwrt enabled", map[string]string{"etc/init.d/telnet": start, "etc/rc.d/S50telnet": "link"}, true},
		{"openwrt disabled", map[string]string{"etc/init.d/telnet": start, "etc/rc.d/S10boot": "link"}, false},
		{"sysv disabled", map[string]string{"etc/init.d/telnet": start, "etc/rc2.d/S01other": "x"}, false},
		{"busybox rcS style", map[string]string{"etc/init.d/telnet": start}, true},
		{"systemd disabled", map[string]string{"lib/systemd/system/telnetd.service": "[Service]\nExecStart=/usr/sbin/telnetd -F\n"}, false},
		{"systemd enabled", map[string]string{"lib/systemd/system/telnetd.service": "[Service]\nExecStart=/usr/sbin/telnetd -F\n",
			"etc/systemd/system/multi-user.target.wants/telnetd.service": "link"}, true},
	} {
		fs, err := Run(context.Background(), treeOf(t, tc.files), []Analyzer{NewBootServices()})
		if err != nil || len(fs) != 1 {
			t.Errorf("%s: %v %v", tc.name, fs, err)
			continue
		}
		if got := fs[0].Severity != finding.Info; got != tc.enabled {
			t.Errorf("%s: severity %v, want enabled=%v", tc.name, fs[0].Severity, tc.enabled)
		}
	}
}

func TestPuTTYKeys(t *testing.T) {
	t.Parallel()
	tree := treeOf(t, map[string]string{
		"root/id.ppk":  "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: x\nPublic-Lines: 2\nAAAA\nBBBB\nPrivate-Lines: 1\nCCCC\nPrivate-MAC: 00\n",
		"root/enc.ppk": "PuTTY-User-Key-File-2: ssh-rsa\r\nEncryption: aes256-cbc\r\nPrivate-Lines: 14\r\n",
		"doc/ppk.txt":  "PuTTY-User-Key-File-3 is the header of a .ppk file\n",
	})
	fs, err := Run(context.Background(), tree, []Analyzer{NewPrivateKeys()})
	if err != nil || len(fs) != 2 {
		t.Fatalf("findings %v, err %v", fs, err)
	}
	if fs[0].Evidence["key_type"] != "ssh-rsa" || fs[0].Evidence["encrypted"] != true || fs[1].Evidence["key_type"] != "ssh-ed25519" || fs[1].Evidence["encrypted"] != false {
		t.Errorf("ppk findings: %+v", fs)
	}
}

func TestCrackBudget(t *testing.T) {
	t.Parallel()
	// sha512-crypt of a password outside the dictionary.
	tree := treeOf(t, map[string]string{"etc/shadow": "root:$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/:0:0:99999:7:::\n"})
	a := NewAccounts()
	a.CrackBudget = time.Nanosecond
	fs, err := Run(context.Background(), tree, []Analyzer{a})
	if err != nil || len(fs) != 1 {
		t.Fatalf("findings %v, err %v", fs, err)
	}
	if fs[0].Severity != finding.High || !strings.Contains(fmt.Sprint(fs[0].Evidence["note_cracking"]), "budget") {
		t.Errorf("finding %+v", fs[0])
	}
}

func TestConsoleLoginVariants(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]bool{
		"ttyS0::respawn:-/bin/sh":                                        true,
		"::askfirst:/bin/ash --login":                                    true,
		"ttyS0::respawn:/bin/login -f root":                              true,
		"ttyS1::respawn:/sbin/getty -n -l /bin/sh -L ttyS1 115200 vt100": true,
		"ttyS0::respawn:/sbin/getty -L ttyS0 115200 vt100":               false,
		"::sysinit:/etc/init.d/rcS":                                      false,
		"ttyS0::respawn:/bin/login":                                      false,
		"s0:2345:respawn:/sbin/getty -L 115200 ttyS0":                    false,
	} {
		fs, err := Run(context.Background(), treeOf(t, map[string]string{"etc/inittab": line + "\n"}), []Analyzer{NewBootServices()})
		if err != nil || (len(fs) == 1) != want {
			t.Errorf("%q: findings %v (err %v), want finding=%v", line, fs, err, want)
		}
	}
}

func TestUpdateURLs(t *testing.T) {
	t.Parallel()
	tree := treeOf(t, map[string]string{
		"usr/sbin/fwcheck":     "#!/bin/sh\nwget -O /tmp/fw.bin http://update.vendor-cloud.com/firmware/cam200/latest.bin\n",
		"etc/config/system":    "option url 'https://update.vendor-cloud.com/firmware/'\n",
		"usr/lib/libota.so":    "\x7fELF\x00\x00http://ota.vendor-cloud.com/api/v1/upgrade\x00http://www.w3.org/2001/XMLSchema\x00",
		"www/index.html":       "<a href=\"http://192.168.1.1/upgrade.cgi\">local</a>",
		"usr/share/doc/README": "see http://update.vendor-cloud.com/firmware/cam200/latest.bin again\n",
	})
	fs, err := Run(context.Background(), tree, []Analyzer{NewUpdateURLs()})
	if err != nil || len(fs) != 2 {
		t.Fatalf("findings %v, err %v; want the wget URL and the OTA URL once each", fs, err)
	}
	for _, f := range fs {
		if f.Check != finding.CheckCleartextProtocol || f.Severity != finding.Info {
			t.Errorf("finding %+v", f)
		}
	}
	// The URL seen in two files is reported at the smaller path, counted twice.
	for _, f := range fs {
		if strings.Contains(fmt.Sprint(f.Evidence["url"]), "latest.bin") && (f.Path != "/usr/sbin/fwcheck" && f.Path != "/usr/share/doc/README" || f.Evidence["files"] != 2) {
			t.Errorf("duplicate URL: %+v", f)
		}
	}
}

// yescrypt hashes ($y$, Debian 11+'s default) come from the real
// mkpasswd; a dictionary password is cracked, others are still reported
// as preset hashes, and settings too costly to try are said so.
func TestYescrypt(t *testing.T) {
	t.Parallel()
	daemontest.Require(t, "mkpasswd=whois")
	mk := func(pw string, extra ...string) string {
		out, err := exec.Command("mkpasswd", append([]string{"-m", "yescrypt"}, append(extra, pw)...)...).Output()
		if err != nil {
			t.Fatalf("mkpasswd: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	weak, strong := mk("xc3511"), mk("Qv8#long-unique-pass")
	// -R 11 asks libxcrypt for N=2^18 with r=32: 1 GiB per try.
	costly := mk("xc3511", "-R", "11")
	if !strings.HasPrefix(weak, "$y$j") || !strings.HasPrefix(costly, "$y$") {
		t.Fatalf("mkpasswd made %q and %q", weak, costly)
	}
	if m, ok := yescryptMemory(weak); !ok || m != 16<<20 {
		t.Errorf("yescryptMemory(%q) = %d, %v; want 16 MiB", weak, m, ok)
	}
	shadow := "root:" + weak + ":19000:0:99999:7:::\nadmin:" + strong + ":19000:0:99999:7:::\nsupport:" + costly + ":19000:0:99999:7:::\n"
	tree := treeOf(t, map[string]string{"etc/shadow": shadow, "etc/passwd": "root:x:0:0::/root:/bin/sh\nadmin:x:1000:1000::/home/admin:/bin/sh\nsupport:x:1001:1001::/:/bin/sh\n"})
	fs, err := Run(context.Background(), tree, []Analyzer{NewAccounts()})
	if err != nil {
		t.Fatal(err)
	}
	byUser := map[string]finding.Finding{}
	for _, f := range fs {
		byUser[fmt.Sprint(f.Evidence["user"])] = f
	}
	for _, tc := range []struct {
		user     string
		severity finding.Severity
		cracked  bool
		note     string
	}{
		{"root", finding.Critical, true, ""},
		{"admin", finding.High, false, ""},
		{"support", finding.High, false, "could not be cracked offline"},
	} {
		f, ok := byUser[tc.user]
		if !ok {
			t.Errorf("%s: no finding in %+v", tc.user, fs)
			continue
		}
		if f.Severity != tc.severity || f.Evidence["cracked"] != tc.cracked || f.Evidence["hash_scheme"] != "yescrypt" {
			t.Errorf("%s: %+v", tc.user, f)
		}
		if pw, _ := f.Evidence["password"].(finding.Secret); tc.cracked && pw != "xc3511" {
			t.Errorf("%s: password evidence %v", tc.user, f.Evidence["password"])
		}
		if note := fmt.Sprint(f.Evidence["note_cracking"]); tc.note != "" && !strings.Contains(note, tc.note) {
			t.Errorf("%s: note %q, want %q", tc.user, note, tc.note)
		}
	}
}

// cleartextURLCases exercise the edges of the URL pattern: schemes glued
// to words, ports without a path, nested URLs, truncation at the end.
var cleartextURLCases = []string{
	"wget http://update.vendor.com/fw.bin",
	"xhttp://a.com/b http://c.com/d",
	"tftp://10.0.0.1/boot ftp://h/p atftp://h/p _ftp://h/p",
	"http://host:8080/path http://host:80 /x http://host:/x http://host:12a/x",
	"http://a/http://b/c ftp://x.y/z?q=1#f",
	"http:///x http://-/ http://a.b",
	"\xc3\xa9http://a.com/\xff\xfeftp://b.com/c\x00tp://d/",
	"tp://x/ ttp://x/ htftp://x/ hftp://x/ ftp://",
	"http://a/b",
}

func TestCleartextURLsMatchPattern(t *testing.T) {
	t.Parallel()
	for _, c := range cleartextURLCases {
		for _, limit := range []int{1, 2, 200} {
			checkCleartextURLs(t, []byte(c), limit)
		}
	}
	if got := cleartextURLs([]byte("get http://update.vendor.com/fw.bin now"), 10); len(got) != 1 || string(got[0]) != "http://update.vendor.com/fw.bin" {
		t.Errorf("cleartextURLs = %q", got)
	}
}
