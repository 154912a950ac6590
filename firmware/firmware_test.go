package firmware

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/analyze"
	"github.com/iotcop/iotcop/firmware/internal/imagetest"
	"github.com/iotcop/iotcop/internal/daemontest"
)

func writeImage(t *testing.T, data []byte) string {
	p := filepath.Join(t.TempDir(), "firmware.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func analyzeImage(t *testing.T, data []byte) *Result {
	t.Helper()
	res, err := Analyze(context.Background(), writeImage(t, data), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.AnalysisErrors) > 0 {
		t.Errorf("analysis errors: %v", res.AnalysisErrors)
	}
	return res
}

func dump(res *Result) string {
	var b strings.Builder
	for _, l := range res.Layers {
		fmt.Fprintf(&b, "layer %d<-%d %s@0x%x %s %s files=%d %v\n", l.ID, l.Parent, l.Format, l.Offset, l.Status, l.Error, l.Files, l.Info)
	}
	for _, f := range res.Findings {
		ev, _ := json.Marshal(finding.Reveal(f.Evidence))
		fmt.Fprintf(&b, "%s %s %s %q %s\n", f.Severity, f.Check, f.Path, f.Title, ev)
	}
	return b.String()
}

// find returns findings of check at path whose evidence has key=value
// (value compared after revealing secrets).
func find(res *Result, check, path string, kv ...any) []finding.Finding {
	var out []finding.Finding
	for _, f := range res.Findings {
		if f.Check != check || (path != "" && !strings.HasSuffix(f.Path, path)) {
			continue
		}
		ev := finding.Reveal(f.Evidence)
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(ev[kv[i].(string)]) != fmt.Sprint(kv[i+1]) {
				ok = false
			}
		}
		if ok {
			out = append(out, f)
		}
	}
	return out
}

// hasLayer reports whether res has an unpacked layer matching want,
// "format@offset key=value ...", the values compared with the layer's info.
func hasLayer(res *Result, want string) bool {
	fields := strings.Fields(want)
	for _, l := range res.Layers {
		if l.Status != "unpacked" || fmt.Sprintf("%s@0x%x", l.Format, l.Offset) != fields[0] {
			continue
		}
		ok := true
		for _, kv := range fields[1:] {
			k, v, _ := strings.Cut(kv, "=")
			ok = ok && l.Info[k] == v
		}
		if ok {
			return true
		}
	}
	return false
}

// assertPlanted checks every planted flaw is reported exactly as expected.
func assertPlanted(t *testing.T, res *Result, pl imagetest.Planted) {
	t.Helper()
	for user, pw := range pl.Cracked {
		fs := find(res, finding.CheckHardCodedCredentials, "/etc/shadow", "user", user, "cracked", true, "password", pw)
		if len(fs) != 1 || fs[0].Severity != finding.Critical || !slices.Contains(fs[0].Provisions, "5.1-1") {
			t.Errorf("user %s: want one critical cracked finding with password %q, got %d", user, pw, len(fs))
		}
	}
	for _, user := range pl.Uncracked {
		fs := find(res, finding.CheckHardCodedCredentials, "/etc/shadow", "user", user, "cracked", false)
		if len(fs) != 1 || fs[0].Severity != finding.High {
			t.Errorf("user %s: want one high preset-hash finding, got %d", user, len(fs))
		}
	}
	for _, user := range pl.Empty {
		if fs := find(res, finding.CheckHardCodedCredentials, "/etc/shadow", "user", user); len(fs) != 1 || !strings.Contains(fs[0].Title, "empty password") {
			t.Errorf("user %s: empty password not reported", user)
		}
	}
	for _, user := range []string{"locked", "star", "daemon", "nobody"} {
		if fs := find(res, finding.CheckHardCodedCredentials, "", "user", user); len(fs) != 0 {
			t.Errorf("locked or no-login account %s reported: %v", user, fs[0].Title)
		}
	}
	if fs := find(res, finding.CheckHardCodedCredentials, "/etc/init.d/rcS", "user", "maint", "password", "M41ntP4ss"); len(fs) != 1 {
		t.Errorf("telnetd -u login not reported")
	}
	for path, typ := range pl.Keys {
		fs := find(res, finding.CheckEmbeddedPrivateKey, path, "key_type", typ)
		if len(fs) != 1 {
			t.Errorf("key %s (%s): %d findings", path, typ, len(fs))
			continue
		}
		enc := slices.Contains(pl.EncryptedKeys, path)
		if fs[0].Evidence["encrypted"] != enc {
			t.Errorf("key %s: encrypted = %v, want %v", path, fs[0].Evidence["encrypted"], enc)
		}
	}
	if n := len(find(res, finding.CheckEmbeddedPrivateKey, "")); n != len(pl.Keys) {
		t.Errorf("%d key findings, want %d (a library with the string PRIVATE KEY or a .pub file must not count)", n, len(pl.Keys))
	}
	if fs := find(res, finding.CheckInsecureBootService, "/etc/init.d/rcS", "service", "telnet", "login_program", "/bin/sh"); len(fs) != 1 || fs[0].Severity != finding.Critical {
		t.Errorf("telnetd -l /bin/sh not reported as critical")
	}
	if fs := find(res, finding.CheckInsecureBootService, "/etc/init.d/rcS", "service", "telnet", "command", "utelnetd -p 2323 -u maint:**** -d"); len(fs) != 1 || fs[0].Severity != finding.High {
		t.Errorf("utelnetd not reported with its password masked")
	}
	if fs := find(res, finding.CheckInsecureBootService, "/etc/inetd.conf", "service", "tftp"); len(fs) != 1 {
		t.Errorf("tftpd from inetd not reported")
	}
	if fs := find(res, finding.CheckInsecureBootService, "/etc/inittab", "service", "console-shell", "tty", "ttyS0"); len(fs) != 1 {
		t.Errorf("console shell not reported")
	}
	if fs := find(res, finding.CheckBinaryHardening, "/", "without_nx", 1, "executables_without_pie", 1, "without_canary", 1); len(fs) != 1 {
		t.Errorf("the unhardened /usr/bin/cgi-handler is not summarised")
	}
	// Secrets never leave in plain text by default.
	b, _ := json.Marshal(res)
	for _, secret := range []string{"xc3511", "M41ntP4ss", "admin1234"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("JSON of the result contains the secret %q", secret)
		}
	}
}

func TestPlantedFlawsInEveryContainer(t *testing.T) {
	t.Parallel()
	root, planted := imagetest.FlawedRootfs(t)
	newc := imagetest.CPIO(t, root, "newc")
	kernel := imagetest.Compress(t, []byte(strings.Repeat("Linux version 5.15.0 (gcc) #1 SMP PREEMPT\n", 4000)), "lzma")
	tests := []struct {
		name  string
		build func(t *testing.T) []byte
		// layer, when set, is a layer the image must unpack to:
		// "format@offset key=value ..." with values from its info.
		layer string
	}{
		{"uImage kernel + xz squashfs", func(t *testing.T) []byte {
			return imagetest.Concat(0x20000, imagetest.UImage(t, kernel, "kernel", "lzma", "Linux-5.15.0"), imagetest.Squashfs(t, root, "xz"))
		}, ""},
		{"squashfs gzip", func(t *testing.T) []byte { return imagetest.Squashfs(t, root, "gzip") }, ""},
		{"squashfs lzo", func(t *testing.T) []byte { return imagetest.Squashfs(t, root, "lzo") }, ""},
		{"squashfs lz4", func(t *testing.T) []byte { return imagetest.Squashfs(t, root, "lz4") }, ""},
		{"squashfs zstd", func(t *testing.T) []byte { return imagetest.Squashfs(t, root, "zstd") }, ""},
		{"squashfs lzma", func(t *testing.T) []byte { return imagetest.Squashfs(t, root, "lzma") }, ""},
		{"uImage filesystem wrapping squashfs", func(t *testing.T) []byte {
			return imagetest.UImage(t, imagetest.Squashfs(t, root, "xz"), "filesystem", "none", "rootfs")
		}, ""},
		{"initramfs cpio.gz in uImage", func(t *testing.T) []byte {
			return imagetest.UImage(t, imagetest.Compress(t, newc, "gzip"), "ramdisk", "gzip", "initramfs")
		}, ""},
		{"cpio odc xz", func(t *testing.T) []byte { return imagetest.Compress(t, imagetest.CPIO(t, root, "odc"), "xz") }, ""},
		{"jffs2 big-endian behind a uImage kernel", func(t *testing.T) []byte {
			return imagetest.Concat(0x10000, imagetest.UImage(t, kernel, "kernel", "lzma", "Linux"), imagetest.JFFS2(t, root, "-b", "-e", "64KiB", "-p"))
		}, ""},
		{"jffs2 little-endian lzo", func(t *testing.T) []byte {
			return imagetest.JFFS2(t, root, "-l", "-X", "lzo", "-x", "zlib")
		}, ""},
		{"ext4", func(t *testing.T) []byte { return imagetest.Ext(t, root, "ext4", 8192) }, ""},
		{"ext2 in gzip", func(t *testing.T) []byte { return imagetest.Compress(t, imagetest.Ext(t, root, "ext2", 4096), "gzip") }, ""},
		{"cramfs big-endian", func(t *testing.T) []byte { return imagetest.CramFS(t, root, "big", false) }, ""},
		{"ubi with a zstd ubifs root", func(t *testing.T) []byte {
			return imagetest.UBI(t, map[string][]byte{"rootfs": imagetest.UBIFS(t, root, "zstd")})
		}, ""},
		{"ubi with a squashfs volume", func(t *testing.T) []byte {
			return imagetest.UBI(t, map[string][]byte{"rootfs": imagetest.Squashfs(t, root, "xz"), "rootfs_data": imagetest.UBIFS(t, imagetest.CleanRootfs(t), "lzo")})
		}, ""},
		// SquashFS 2.x/3.x and LZMA JFFS2: no Debian tool writes them, so
		// imagetest writes them from the format documentation.
		{"uImage kernel + squashfs 3.1 big-endian lzma (Broadcom)", func(t *testing.T) []byte {
			return imagetest.Concat(0x10000, imagetest.UImage(t, kernel, "kernel", "lzma", "Linux-2.6.22"),
				imagetest.Squashfs3(t, root, imagetest.Squash3Options{Major: 3, Minor: 1, BigEndian: true, Compression: "lzma"}))
		}, "squashfs@0x10000 version=3.1 endian=big compression=lzma"},
		{"squashfs 3.1 little-endian gzip", func(t *testing.T) []byte {
			return imagetest.Squashfs3(t, root, imagetest.Squash3Options{Major: 3, Minor: 1, Compression: "gzip"})
		}, "squashfs@0x0 version=3.1 endian=little compression=gzip"},
		{"squashfs 3.0 big-endian lzma without size field", func(t *testing.T) []byte {
			return imagetest.Squashfs3(t, root, imagetest.Squash3Options{Major: 3, Minor: 0, BigEndian: true, Compression: "lzma-nosize"})
		}, "squashfs@0x0 version=3.0 endian=big compression=lzma"},
		{"squashfs 2.1 big-endian gzip", func(t *testing.T) []byte {
			return imagetest.Squashfs3(t, root, imagetest.Squash3Options{Major: 2, Minor: 1, BigEndian: true, Compression: "gzip"})
		}, "squashfs@0x0 version=2.1 endian=big compression=gzip"},
		{"jffs2 big-endian lzma 0x08 (OpenWrt)", func(t *testing.T) []byte {
			return imagetest.JFFS2LZMA(t, root, true, imagetest.JFFS2LZMAOpenWrt)
		}, "jffs2@0x0 endian=big"},
		{"jffs2 little-endian lzma 0x15", func(t *testing.T) []byte {
			return imagetest.JFFS2LZMA(t, root, false, imagetest.JFFS2LZMAProps)
		}, "jffs2@0x0 endian=little"},
		{"tar.bz2", func(t *testing.T) []byte { return imagetest.Compress(t, imagetest.Tar(t, root), "bzip2") }, ""},
		{"zstd tar", func(t *testing.T) []byte { return imagetest.Compress(t, imagetest.Tar(t, root), "zstd", "-q") }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := tc.build(t)
			res := analyzeImage(t, img)
			if res.Size != int64(len(img)) || len(res.SHA256) != 64 {
				t.Errorf("result size %d sha256 %q, want %d bytes", res.Size, res.SHA256, len(img))
			}
			if len(res.Failed()) > 0 {
				t.Errorf("failed layers: %+v", res.Failed())
			}
			if tc.layer != "" && !hasLayer(res, tc.layer) {
				t.Errorf("no unpacked layer %s", tc.layer)
			}
			assertPlanted(t, res, planted)
			if t.Failed() {
				t.Log("\n" + dump(res))
			}
		})
	}
}

func TestCleanImageHasNoFindings(t *testing.T) {
	t.Parallel()
	root := imagetest.CleanRootfs(t)
	img := imagetest.Concat(0x10000, imagetest.UImage(t, []byte(strings.Repeat("kernel", 1000)), "kernel", "none", "Linux"), imagetest.Squashfs(t, root, "xz"))
	res := analyzeImage(t, img)
	if len(res.Findings) != 0 {
		t.Errorf("clean image has findings:\n%s", dump(res))
	}
	if res.Files < 6 {
		t.Errorf("only %d files unpacked:\n%s", res.Files, dump(res))
	}
}

// Vendors link /etc/passwd to a file made at runtime and keep the
// defaults elsewhere; the defaults are what every unit starts with.
func TestRuntimeLinkedPasswd(t *testing.T) {
	t.Parallel()
	daemontest.Require(t, "openssl")
	root := imagetest.Rootfs(t, map[string]imagetest.Entry{
		"etc/passwd":     {Link: "/var/passwd"},
		"etc/shadow":     {Link: "/var/shadow"},
		"etc_ro/passwd":  {Content: "admin:x:0:0::/:/bin/sh\n"},
		"etc_ro/shadow":  {Content: "admin:" + strings.TrimSpace(string(imagetest.Run(t, "", nil, "openssl", "passwd", "-1", "-salt", "abcdefgh", "1234"))) + ":0:0:99999:7:::\n"},
		"var":            {Dir: true},
		"etc/init.d/rcS": {Content: "cp /etc_ro/passwd /var/passwd\n"},
	})
	res := analyzeImage(t, imagetest.Squashfs(t, root, "gzip"))
	fs := find(res, finding.CheckHardCodedCredentials, "/etc_ro/shadow", "user", "admin", "password", "1234")
	if len(fs) != 1 || !strings.Contains(fmt.Sprint(fs[0].Evidence["note"]), "/etc/passwd links to /var/passwd") {
		t.Fatalf("runtime-linked defaults not reported:\n%s", dump(res))
	}
}

func TestBrokenLayerDoesNotStopAnalysis(t *testing.T) {
	t.Parallel()
	root, planted := imagetest.FlawedRootfs(t)
	sq := imagetest.Squashfs(t, root, "gzip")
	truncated := imagetest.Squashfs(t, imagetest.CleanRootfs(t), "xz")
	truncated = truncated[:binary.LittleEndian.Uint64(truncated[40:])/2] // half of bytes_used
	noise := make([]byte, 8192)
	for i := range noise {
		noise[i] = byte(i*7919 + i>>3)
	}
	img := imagetest.Concat(4096, truncated, noise, sq)
	res := analyzeImage(t, img)
	if f := res.Failed(); len(f) != 1 || f[0].Offset != 0 || !strings.Contains(f[0].Error, "squashfs at offset 0x0") {
		t.Errorf("want one failed squashfs layer at 0:\n%s", dump(res))
	}
	var opaque bool
	for _, l := range res.Layers {
		opaque = opaque || l.Status == "opaque"
	}
	if !opaque {
		t.Errorf("the noise region was not reported as opaque:\n%s", dump(res))
	}
	assertPlanted(t, res, planted)
}

func TestExtractDir(t *testing.T) {
	t.Parallel()
	root := imagetest.CleanRootfs(t)
	out := filepath.Join(t.TempDir(), "x")
	if _, err := Analyze(context.Background(), writeImage(t, imagetest.Squashfs(t, root, "gzip")), Options{ExtractDir: out}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "001-squashfs-0x0", "etc", "inittab"))
	if err != nil || !strings.Contains(string(b), "getty") {
		t.Errorf("extracted inittab: %q %v", b, err)
	}
}

func TestComponents(t *testing.T) {
	t.Parallel()
	daemontest.Require(t, "busybox=busybox-static", "dropbear=dropbear-bin", "sshd=openssh-server")
	entries := map[string]imagetest.Entry{
		"usr/lib/opkg/status":  {Content: "Package: uhttpd\nVersion: 2023-06-25-34a8a74d-2\nStatus: install user installed\nArchitecture: mips_24kc\n\nPackage: dnsmasq\nVersion: 2.89-4\nStatus: install user installed\n"},
		"lib/apk/db/installed": {Content: "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:zlib\nV:1.3.1-r0\n\n"},
	}
	copies := map[string]string{"/bin/busybox": "bin/busybox", "/usr/sbin/dropbear": "usr/sbin/dropbear", "/usr/sbin/sshd": "usr/sbin/sshd"}
	for src, dst := range copies {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Skipf("%s: %v", src, err)
		}
		entries[dst] = imagetest.Entry{Content: string(b), Mode: 0o755}
	}
	root := imagetest.Rootfs(t, entries)
	kernel := []byte("Linux version 5.10.176 (builder@buildhost) (gcc 12) #0 SMP\n")
	img := imagetest.Concat(0x10000, imagetest.UImage(t, kernel, "kernel", "none", "MIPS OpenWrt Linux-5.10.176"), imagetest.Squashfs(t, root, "gzip"))
	bbVersion := strings.Fields(string(imagetest.Run(t, "", nil, "busybox")))[1] // "v1.35.0"
	osvDir := t.TempDir()
	rec := `{"id":"TEST-1","aliases":["CVE-2099-0001"],"affected":[{"package":{"name":"busybox"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"99.0"}]}]}]}`
	if err := os.WriteFile(filepath.Join(osvDir, "TEST-1.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Analyze(context.Background(), writeImage(t, img), Options{OSV: osvDir})
	if err != nil {
		t.Fatal(err)
	}
	if fs := find(res, finding.CheckKnownVulnerability, "/bin/busybox", "osv_id", "TEST-1"); len(fs) != 1 || !strings.Contains(fs[0].Title, "potentially affected by CVE-2099-0001") {
		t.Errorf("OSV match missing:\n%s", dump(res))
	}
	got := map[string]string{}
	for _, c := range res.Components {
		got[c.Name+"/"+c.Source] = c.Version
	}
	want := map[string]string{
		"busybox/version-string": strings.TrimPrefix(bbVersion, "v"),
		"uhttpd/opkg":            "2023-06-25-34a8a74d-2",
		"dnsmasq/opkg":           "2.89-4",
		"musl/apk":               "1.2.4-r2",
		"zlib/apk":               "1.3.1-r0",
		"linux/version-string":   "5.10.176",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("component %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	for _, name := range []string{"dropbear/version-string", "openssh/version-string"} {
		if got[name] == "" {
			t.Errorf("component %s not found (all: %v)", name, got)
		}
	}
	for _, c := range res.Components {
		if c.Name == "busybox" && !strings.HasPrefix(c.CPE, "cpe:2.3:a:busybox:busybox:") {
			t.Errorf("busybox CPE %q", c.CPE)
		}
	}
}

func TestWriteCycloneDX(t *testing.T) {
	t.Parallel()
	res := &Result{Image: "/tmp/router.bin", SHA256: "ab12", Components: []analyze.Component{
		{Name: "busybox", Version: "1.36.1", Type: "application", PURL: "pkg:generic/busybox@1.36.1", CPE: "cpe:2.3:a:busybox:busybox:1.36.1:*:*:*:*:*:*:*", Source: "version-string", Path: "/bin/busybox"},
	}}
	var b strings.Builder
	if err := WriteCycloneDX(&b, res, "1.0.0", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["bomFormat"] != "CycloneDX" || doc["specVersion"] != "1.5" || !strings.HasPrefix(fmt.Sprint(doc["serialNumber"]), "urn:uuid:") {
		t.Errorf("header: %v", doc)
	}
	meta := doc["metadata"].(map[string]any)
	if meta["timestamp"] != "2026-01-02T03:04:05Z" || meta["component"].(map[string]any)["type"] != "firmware" {
		t.Errorf("metadata: %v", meta)
	}
	comps := doc["components"].([]any)
	c := comps[0].(map[string]any)
	if len(comps) != 1 || c["name"] != "busybox" || c["purl"] != "pkg:generic/busybox@1.36.1" || c["cpe"] == nil || c["type"] != "application" {
		t.Errorf("components: %v", comps)
	}
}

// Files are unpacked and analysed in parallel; the result must not depend
// on the order.
func TestDeterministicResult(t *testing.T) {
	t.Parallel()
	root, _ := imagetest.FlawedRootfs(t)
	p := writeImage(t, imagetest.Squashfs(t, root, "gzip"))
	var prev string
	for i := range 3 {
		res, err := Analyze(context.Background(), p, Options{Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(struct {
			F any
			L any
			C any
		}{res.Findings, res.Layers, res.Components})
		if i > 0 && string(b) != prev {
			t.Fatalf("run %d differs from the previous one", i)
		}
		prev = string(b)
	}
}
