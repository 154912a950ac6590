package assess

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotcop/iotcop/declare"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/standard"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const host = "127.0.0.5"

// loadCatalogue parses the catalogue once for all tests (read only).
var loadCatalogue = sync.OnceValues(standard.Load)

func catalogue(t testing.TB) *standard.Catalogue {
	t.Helper()
	c, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// liveChecks are the ids of scan.DefaultChecks.
var liveChecks = []string{checkUnauthenticatedAccess, checkDefaultCredentials, checkCleartext, checkExposed,
	checkWeakSSH, checkWeakTLS, checkDisclosure}

func device() finding.Device {
	return finding.Device{Address: host, Services: []finding.Service{
		{Port: 22, Transport: "tcp", Protocol: "ssh", Attempts: 4},
		{Port: 23, Transport: "tcp", Protocol: "telnet", Attempts: 3},
		{Port: 80, Transport: "tcp", Protocol: "http"},
	}}
}

func image() finding.FirmwareImage {
	return finding.FirmwareImage{Image: "fw.bin", Size: 4096, Files: 10, Layers: []finding.FirmwareLayer{
		{ID: 0, Parent: -1, Format: "image", Status: "unpacked"},
		{ID: 1, Parent: 0, Format: "squashfs", Status: "unpacked"},
	}}
}

func live(check string, sev finding.Severity, proto string, port int, title string, provisions ...string) finding.Finding {
	return finding.Finding{Check: check, Provisions: provisions, Severity: sev, Title: title,
		Host: host, Port: port, Transport: "tcp", Protocol: proto, Evidence: map[string]any{}}
}

func fw(check string, sev finding.Severity, path, title string, provisions ...string) finding.Finding {
	return finding.Finding{Check: check, Provisions: provisions, Severity: sev, Title: title, Path: path, Evidence: map[string]any{}}
}

var (
	fDefault    = live(checkDefaultCredentials, finding.Critical, "telnet", 23, "telnet accepts a default credential", "5.1-1")
	fOpenTelnet = live(checkUnauthenticatedAccess, finding.Critical, "telnet", 23, "telnet shell without login", "5.1-1", "5.5-4")
	fOpenMQTT   = live(checkUnauthenticatedAccess, finding.Critical, "mqtt", 1883, "anonymous MQTT connect", "5.1-1", "5.5-4")
	fOpenHTTP   = live(checkUnauthenticatedAccess, finding.Critical, "http", 80, "HTTP admin page without authentication", "5.1-1", "5.5-4")
	fSharedCred = live(checkShared, finding.Critical, "telnet", 23, "the same telnet credential is accepted by 2 devices", "5.1-1")
	fSharedKey  = live(checkShared, finding.High, "ssh", 22, "2 devices share one SSH host key", "5.4-1", "5.5-1")
	fCleartext  = live(checkCleartext, finding.Medium, "telnet", 23, "telnet takes credentials in clear text", "5.5-1")
	fWeakTLS    = live(checkWeakTLS, finding.Medium, "http", 443, "TLSv1.0 accepted", "5.5-1")
	fWeakSSHLow = live(checkWeakSSH, finding.Low, "ssh", 22, "SSH offers ssh-rsa host key signatures", "5.5-1")
	fExposedTel = live(checkExposed, finding.High, "telnet", 23, "telnet is reachable on port 23", "5.6-1", "5.6-2")
	fExposedURL = func() finding.Finding {
		f := live(checkExposed, finding.High, "http", 80, "the web server serves /etc/passwd from the device's file system", "5.6-1", "5.6-2")
		f.Evidence["url"] = "http://127.0.0.5/etc/passwd"
		return f
	}()
	fADBOpen    = live(checkExposed, finding.High, "adb", 5555, "ADB is reachable without authentication", "5.6-1", "5.6-2")
	fVendorNone = func() finding.Finding {
		f := live(checkDisclosure, finding.High, "http", 80, "no vulnerability disclosure policy (security.txt) on the manufacturer's site https://example.com", "5.2-1")
		f.Evidence["source"] = "--vendor-url"
		return f
	}()
	fVendorMinor = func() finding.Finding {
		f := live(checkDisclosure, finding.Medium, "http", 80, "the manufacturer's security.txt at https://example.com has problems", "5.2-1")
		f.Evidence["source"] = "--vendor-url"
		return f
	}()
	fDeviceNoTxt = func() finding.Finding {
		f := live(checkDisclosure, finding.Medium, "http", 80, "no vulnerability disclosure policy (security.txt) on the device's web interface", "5.2-1")
		f.Evidence["source"] = "device web interface"
		return f
	}()
	fUnresponsive = live(checkUnresponsive, finding.Medium, "telnet", 23, "device stopped answering during the scan", "5.13-1", "5.9-1")
	fCrash        = func() finding.Finding {
		f := live(checkUnresponsive, finding.High, "http", 80, "device stopped answering after the malformed input http-long-uri", "5.13-1", "5.9-1")
		f.Evidence["probe"] = "http-long-uri"
		return f
	}()
	fHardCoded   = fw(checkHardCoded, finding.Critical, "/etc/shadow", "root has a preset password", "5.1-1")
	fKey         = fw(checkPrivateKey, finding.High, "/etc/ssl/private/server.key", "private key in the firmware", "5.4-1", "5.4-3")
	fTLSKey      = fw(checkPrivateKey, finding.High, "/etc/lighttpd/server.pem", "TLS certificate shipped with its private key", "5.5-1")
	fSecret      = fw(checkSecret, finding.High, "/usr/bin/cloud", "AWS secret access key", "5.4-1", "5.4-3")
	fBootTelnet  = fw(checkBoot, finding.High, "/etc/init.d/rcS", "Telnet server started at boot", "5.5-1", "5.6-1")
	fBootConsole = fw(checkBoot, finding.High, "/etc/inittab", "Shell without login on the serial console (ttyS0)", "5.6-4", "5.6-1")
	fBootRootPw  = fw(checkBoot, finding.Low, "/etc/config/dropbear", "SSH server accepts password logins for root", "5.6-1")
	fHardening   = fw(checkHardening, finding.Medium, "/usr/bin/httpd", "binary built without stack protector", "5.6-9")
	fKnownVuln   = fw(checkKnownVulnerability(), finding.High, "/usr/lib/opkg/status", "busybox 1.24.1 has CVE-2017-16544", "5.2-3", "5.3-8")
)

func checkKnownVulnerability() string { return checkKnownVuln }

// decl describes a declarations file for a case.
type decl struct {
	conds, provs string
	noURL        bool
	end          string // default 2030-12-31
	noPublished  bool
}

func (d decl) parse(t *testing.T, ed standard.Edition) *declare.Declarations {
	t.Helper()
	end := d.end
	if end == "" {
		end = "2030-12-31"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "schema: %s\nedition: %s\n", declare.SchemaV1, ed)
	b.WriteString("product: {manufacturer: Example Devices Ltd, model: CamOne, hardware_version: B, firmware_version: \"1.0\"}\n")
	fmt.Fprintf(&b, "support_period:\n  end: %s\n", end)
	if !d.noPublished {
		b.WriteString("  published_at: https://example.com/support\n")
	}
	if !d.noURL {
		b.WriteString("vulnerability_disclosure: {url: \"https://example.com/.well-known/security.txt\"}\n")
	}
	b.WriteString("conditions:\n" + d.conds + "provisions:\n" + d.provs)
	decls, _ := declare.Parse(catalogue(t), "d.yaml", []byte(b.String()), t0)
	if decls == nil {
		t.Fatalf("declarations do not parse:\n%s", b.String())
	}
	return decls
}

type verdictCase struct {
	name      string
	ed        standard.Edition
	provision string
	findings  []finding.Finding
	// targets: "" (a device and a complete image), "live", "fw", "none",
	// "dead" (device stopped answering), "untried" (ssh got no attempt),
	// "opaque" (image with an opaque layer).
	targets  string
	noChecks bool
	extra    []string // further checks that ran
	decl     *decl
	manifest bool
	vendor   bool

	want, basis, rule   string
	contradiction       string // substring; "" means none expected
	reason              string // substring
	failing, indicating int    // finding refs by role
}

func (tc verdictCase) input(t *testing.T) Input {
	ed := tc.ed
	if ed == "" {
		ed = standard.V2_1_1
	}
	in := Input{Edition: ed, Findings: tc.findings, Now: t0, Manifest: tc.manifest}
	if tc.vendor {
		in.VendorSites = []string{"https://example.com"}
	}
	if !tc.noChecks {
		in.ChecksRun = append(slices.Clone(liveChecks), FirmwareChecks(true)...)
	}
	in.ChecksRun = append(in.ChecksRun, tc.extra...)
	dev, img := device(), image()
	switch tc.targets {
	case "":
		in.Targets = Targets{Devices: []finding.Device{dev}, Images: []finding.FirmwareImage{img}}
	case "live":
		in.Targets = Targets{Devices: []finding.Device{dev}}
	case "fw":
		in.Targets = Targets{Images: []finding.FirmwareImage{img}}
	case "none":
	case "dead":
		alive := false
		dev.Alive = &alive
		in.Targets = Targets{Devices: []finding.Device{dev}}
	case "untried":
		dev.Services[0].Attempts = 0
		in.Targets = Targets{Devices: []finding.Device{dev}}
	case "opaque":
		img.Layers = append(img.Layers, finding.FirmwareLayer{ID: 2, Parent: 0, Format: "unknown", Entropy: 7.99, Status: "opaque"})
		in.Targets = Targets{Images: []finding.FirmwareImage{img}}
	default:
		t.Fatalf("unknown targets %q", tc.targets)
	}
	if tc.decl != nil {
		in.Declarations = tc.decl.parse(t, ed)
	}
	return in
}

const y = "    support: Y\n    implementation: described here\n"

func entry(id, body string) string { return "  " + id + ":\n" + body }

func TestVerdicts(t *testing.T) {
	cat := catalogue(t)
	na := func(why string) string { return "    support: N/A\n    justification: " + why + "\n" }
	notImpl := func(why string) string { return "    support: N\n    justification: " + why + "\n" }
	cases := []verdictCase{
		// 5.1-1 passwords (PSTI 1)
		{name: "5.1-1 default credential fails", provision: "5.1-1", findings: []finding.Finding{fDefault},
			want: finding.VerdictFail, basis: "evidence", rule: "passwords", reason: "telnet accepts a default credential", failing: 1},
		{name: "5.1-1 clean on every login service passes", provision: "5.1-1",
			want: finding.VerdictPass, basis: "evidence", rule: "passwords", reason: "credential checks on every login service"},
		{name: "5.1-1 declared supported contradicted", provision: "5.1-1", findings: []finding.Finding{fDefault},
			decl: &decl{provs: entry("5.1-1", y)}, want: finding.VerdictFail, basis: "evidence+declaration",
			contradiction: "declared supported (d.yaml:", failing: 1},
		{name: "5.1-1 not applicable by conditions", provision: "5.1-1", targets: "fw",
			decl: &decl{conds: "  passwords_used: no\n"}, want: finding.VerdictNotApplicable, basis: "conditions", rule: RuleConditions,
			reason: "C(1) (passwords are used) does not hold"},
		{name: "5.1-1 declared N/A with justification", provision: "5.1-1", targets: "none", noChecks: true,
			decl: &decl{provs: entry("5.1-1", na("no passwords on any interface"))}, want: finding.VerdictNotApplicable,
			basis: "declaration", reason: "no passwords on any interface"},
		{name: "5.1-1 declared N/A contradicted", provision: "5.1-1", findings: []finding.Finding{fDefault},
			decl: &decl{provs: entry("5.1-1", na("no passwords"))}, want: finding.VerdictFail,
			contradiction: "declared not applicable", failing: 1},
		{name: "5.1-1 conditions contradicted", provision: "5.1-1", findings: []finding.Finding{fDefault},
			decl: &decl{conds: "  passwords_used: no\n"}, want: finding.VerdictFail, contradiction: "declared conditions make it not apply", failing: 1},
		{name: "5.1-1 N/A contradicting conditions", provision: "5.1-1", targets: "none",
			decl: &decl{conds: "  passwords_used: yes\n", provs: entry("5.1-1", na("none"))}, want: finding.VerdictInconclusive,
			contradiction: "passwords_used declared yes"},
		{name: "5.1-1 access without credentials fails", provision: "5.1-1", findings: []finding.Finding{fOpenTelnet},
			want: finding.VerdictFail, failing: 1},
		{name: "5.1-1 preset password in firmware fails", provision: "5.1-1", findings: []finding.Finding{fHardCoded},
			want: finding.VerdictFail, reason: "root has a preset password", failing: 1},
		{name: "5.1-1 shared credential fails", provision: "5.1-1", findings: []finding.Finding{fSharedCred},
			want: finding.VerdictFail, failing: 1},
		{name: "5.1-1 shared host key is not a password", provision: "5.1-1", findings: []finding.Finding{fSharedKey},
			want: finding.VerdictPass},
		{name: "5.1-1 login service not tried", provision: "5.1-1", targets: "untried",
			want: finding.VerdictInconclusive, reason: "no credential was tried on ssh 127.0.0.5:22"},
		{name: "5.1-1 device died", provision: "5.1-1", targets: "dead", want: finding.VerdictInconclusive, reason: "stopped answering"},
		{name: "5.1-1 checks did not run", provision: "5.1-1", noChecks: true, want: finding.VerdictNotAssessed,
			reason: "no declarations file and no evidence"},
		{name: "5.1-1 firmware clean needs declaration", provision: "5.1-1", targets: "fw", want: finding.VerdictInconclusive,
			reason: "cannot decide alone"},
		{name: "5.1-1 firmware clean and declared", provision: "5.1-1", targets: "fw", decl: &decl{provs: entry("5.1-1", y)},
			want: finding.VerdictPass, basis: "evidence+declaration", reason: "described here"},
		{name: "5.1-1 declared only", provision: "5.1-1", targets: "none", noChecks: true, decl: &decl{provs: entry("5.1-1", y)},
			want: finding.VerdictPass, basis: "declaration", reason: "not verified by a check"},
		{name: "5.1-1 declared N (mandatory) fails", provision: "5.1-1", targets: "none", noChecks: true,
			decl: &decl{provs: entry("5.1-1", notImpl("legacy"))}, want: finding.VerdictFail, basis: "declaration", rule: RuleNotImplemented},

		// 5.1-3 authentication crypto
		{name: "5.1-3 clear-text credentials fail", provision: "5.1-3", findings: []finding.Finding{fCleartext},
			want: finding.VerdictFail, failing: 1},
		{name: "5.1-3 clean needs declaration", provision: "5.1-3", want: finding.VerdictInconclusive},
		{name: "5.1-3 clean and declared", provision: "5.1-3", decl: &decl{provs: entry("5.1-3", y)}, want: finding.VerdictPass,
			basis: "evidence+declaration"},
		{name: "5.1-3 declared contradicted", provision: "5.1-3", findings: []finding.Finding{fCleartext},
			decl: &decl{provs: entry("5.1-3", y)}, want: finding.VerdictFail, contradiction: "telnet takes credentials in clear text"},

		// 5.2-1 disclosure (PSTI 2)
		{name: "5.2-1 no policy on manufacturer site fails", provision: "5.2-1", findings: []finding.Finding{fVendorNone}, vendor: true,
			want: finding.VerdictFail, failing: 1},
		{name: "5.2-1 declared URL contradicted", provision: "5.2-1", findings: []finding.Finding{fVendorNone}, vendor: true,
			decl: &decl{}, want: finding.VerdictFail, contradiction: "declared supported"},
		{name: "5.2-1 vendor checked clean and URL declared", provision: "5.2-1", findings: []finding.Finding{fDeviceNoTxt}, vendor: true,
			decl: &decl{}, want: finding.VerdictPass, basis: "evidence+declaration", reason: "policy published at https://example.com/.well-known/security.txt"},
		{name: "5.2-1 minor problems indicate", provision: "5.2-1", findings: []finding.Finding{fVendorMinor}, vendor: true,
			decl: &decl{}, want: finding.VerdictInconclusive, indicating: 1, contradiction: "declared supported"},
		{name: "5.2-1 URL declared only", provision: "5.2-1", decl: &decl{}, want: finding.VerdictPass, basis: "declaration",
			reason: "not verified by a check"},
		{name: "5.2-1 nothing declared, no vendor site", provision: "5.2-1", decl: &decl{noURL: true},
			want: finding.VerdictInconclusive, reason: "no manufacturer site was checked"},
		{name: "5.2-1 no checks no declarations", provision: "5.2-1", noChecks: true, want: finding.VerdictNotAssessed},

		// 5.2-3 / 5.3-8 known vulnerabilities (indicators)
		{name: "5.2-3 known vulnerability indicates", provision: "5.2-3", findings: []finding.Finding{fKnownVuln},
			want: finding.VerdictInconclusive, indicating: 1},
		{name: "5.2-3 recommendation not implemented, justified", provision: "5.2-3", decl: &decl{provs: entry("5.2-3", notImpl("no monitoring yet"))},
			want: finding.VerdictNotApplicable, rule: RuleNotImplemented, reason: "justification 4-1 asks for"},
		{name: "5.2-3 recommendation not implemented, unjustified", provision: "5.2-3", decl: &decl{provs: entry("5.2-3", "    support: N\n")},
			want: finding.VerdictFail, rule: RuleNotImplemented},
		{name: "5.3-8 declared supported with known vulnerability", provision: "5.3-8", findings: []finding.Finding{fKnownVuln},
			decl: &decl{conds: "  update_mechanism: yes\n", provs: entry("5.3-8", y)}, want: finding.VerdictInconclusive,
			contradiction: "CVE-2017-16544", indicating: 1},
		{name: "5.3-8 no update mechanism", provision: "5.3-8", decl: &decl{conds: "  update_mechanism: no\n"},
			want: finding.VerdictNotApplicable, basis: "conditions"},
		{name: "5.3-8 clean firmware and declared", provision: "5.3-8", decl: &decl{conds: "  update_mechanism: yes\n", provs: entry("5.3-8", y)},
			want: finding.VerdictPass, basis: "evidence+declaration"},

		// 5.3-13 support period (PSTI 3)
		{name: "5.3-13 declared and published", provision: "5.3-13", decl: &decl{}, want: finding.VerdictPass, rule: RuleSupportPeriod,
			reason: "security updates declared until 2030-12-31, published at https://example.com/support"},
		{name: "5.3-13 ended", provision: "5.3-13", decl: &decl{end: "2025-01-31"}, want: finding.VerdictFail, reason: "ended on 2025-01-31"},
		{name: "5.3-13 not published", provision: "5.3-13", decl: &decl{noPublished: true}, want: finding.VerdictInconclusive},
		{name: "5.3-13 not declared", provision: "5.3-13", decl: &decl{end: "\"\""}, want: finding.VerdictNotAssessed},
		{name: "5.3-13 no declarations", provision: "5.3-13", want: finding.VerdictNotAssessed},
		{name: "5.3-13 declared N", provision: "5.3-13", decl: &decl{provs: entry("5.3-13", "    support: N\n")}, want: finding.VerdictFail},

		// 4-1 reporting
		{name: "4-1 unjustified N", provision: "4-1", decl: &decl{provs: entry("5.2-3", "    support: N\n")}, want: finding.VerdictFail,
			reason: "5.2-3 (declared N, line"},
		{name: "4-1 recommendations undeclared", provision: "4-1", decl: &decl{}, want: finding.VerdictInconclusive, reason: "recommendations are neither decided nor declared"},
		{name: "4-1 no declarations", provision: "4-1", want: finding.VerdictNotAssessed},

		// 5.4-1 / 5.4-3 stored and hard-coded parameters
		{name: "5.4-1 key fails", provision: "5.4-1", findings: []finding.Finding{fKey}, want: finding.VerdictFail, failing: 1},
		{name: "5.4-1 shared host key fails", provision: "5.4-1", findings: []finding.Finding{fSharedKey}, want: finding.VerdictFail},
		{name: "5.4-1 clean and declared", provision: "5.4-1", decl: &decl{provs: entry("5.4-1", y)}, want: finding.VerdictPass},
		{name: "5.4-1 declared contradicted", provision: "5.4-1", findings: []finding.Finding{fSecret}, decl: &decl{provs: entry("5.4-1", y)},
			want: finding.VerdictFail, contradiction: "AWS secret access key"},
		{name: "5.4-3 secret fails", provision: "5.4-3", findings: []finding.Finding{fSecret}, want: finding.VerdictFail},
		{name: "5.4-3 clean complete image passes", provision: "5.4-3", targets: "fw", want: finding.VerdictPass, basis: "evidence"},
		{name: "5.4-3 opaque layer leaves it open", provision: "5.4-3", targets: "opaque", want: finding.VerdictInconclusive,
			reason: "1 opaque layer(s) not inspected"},
		{name: "5.4-3 no image", provision: "5.4-3", targets: "live", want: finding.VerdictNotAssessed},

		// 5.5-1 communication crypto
		{name: "5.5-1 weak TLS fails", provision: "5.5-1", findings: []finding.Finding{fWeakTLS}, want: finding.VerdictFail},
		{name: "5.5-1 telnet at boot fails", provision: "5.5-1", findings: []finding.Finding{fBootTelnet}, want: finding.VerdictFail},
		{name: "5.5-1 TLS key in firmware fails", provision: "5.5-1", findings: []finding.Finding{fTLSKey}, want: finding.VerdictFail},
		{name: "5.5-1 low SSH weakness indicates", provision: "5.5-1", findings: []finding.Finding{fWeakSSHLow},
			decl: &decl{provs: entry("5.5-1", y)}, want: finding.VerdictInconclusive, indicating: 1, contradiction: "ssh-rsa"},
		{name: "5.5-1 clean needs declaration", provision: "5.5-1", want: finding.VerdictInconclusive},
		{name: "5.5-1 clean and declared", provision: "5.5-1", decl: &decl{provs: entry("5.5-1", y)}, want: finding.VerdictPass},
		{name: "5.5-1 declared contradicted", provision: "5.5-1", findings: []finding.Finding{fCleartext}, decl: &decl{provs: entry("5.5-1", y)},
			want: finding.VerdictFail, contradiction: "declared supported"},
		{name: "5.5-1 N/A not permitted is ignored", provision: "5.5-1", decl: &decl{provs: entry("5.5-1", na("no network"))},
			want: finding.VerdictInconclusive, reason: "mandatory without conditions"},

		// 5.5-4, 5.5-5, 5.5-7
		{name: "5.5-4 anonymous MQTT fails", provision: "5.5-4", findings: []finding.Finding{fOpenMQTT}, want: finding.VerdictFail},
		{name: "5.5-4 recommendation justified N", provision: "5.5-4", decl: &decl{provs: entry("5.5-4", notImpl("local-only API by design"))},
			want: finding.VerdictNotApplicable},
		{name: "5.5-4 justified N but evidence", provision: "5.5-4", findings: []finding.Finding{fOpenMQTT},
			decl: &decl{provs: entry("5.5-4", notImpl("local-only API by design"))}, want: finding.VerdictFail},
		{name: "5.5-5 open web admin fails", provision: "5.5-5", findings: []finding.Finding{fOpenHTTP}, want: finding.VerdictFail},
		{name: "5.5-5 anonymous MQTT is not configuration", provision: "5.5-5", findings: []finding.Finding{fOpenMQTT},
			want: finding.VerdictInconclusive},
		{name: "5.5-7 clear-text credentials fail", provision: "5.5-7", findings: []finding.Finding{fCleartext}, want: finding.VerdictFail},

		// 5.6-1, 5.6-2, 5.6-4, 5.6-4A
		{name: "5.6-1 telnet exposed fails", provision: "5.6-1", findings: []finding.Finding{fExposedTel}, want: finding.VerdictFail},
		{name: "5.6-1 clean with manifest passes", provision: "5.6-1", targets: "live", manifest: true, want: finding.VerdictPass, basis: "evidence"},
		{name: "5.6-1 clean without manifest", provision: "5.6-1", targets: "live", want: finding.VerdictInconclusive},
		{name: "5.6-1 manifest but image not clean of minor", provision: "5.6-1", manifest: true, findings: []finding.Finding{fBootRootPw},
			want: finding.VerdictInconclusive, indicating: 1},
		{name: "5.6-1 declared contradicted", provision: "5.6-1", findings: []finding.Finding{fBootConsole},
			decl: &decl{provs: entry("5.6-1", y)}, want: finding.VerdictFail, contradiction: "serial console"},
		{name: "5.6-2 files served fail", provision: "5.6-2", findings: []finding.Finding{fExposedURL}, want: finding.VerdictFail},
		{name: "5.6-2 telnet only indicates", provision: "5.6-2", findings: []finding.Finding{fExposedTel}, want: finding.VerdictInconclusive,
			indicating: 1},
		{name: "5.6-4 console shell fails", provision: "5.6-4", findings: []finding.Finding{fBootConsole}, want: finding.VerdictFail},
		{name: "5.6-4 no physical debug interface", provision: "5.6-4", decl: &decl{conds: "  physical_debug_interface: no\n"},
			want: finding.VerdictNotApplicable},
		{name: "5.6-4 N/A without justification ignored", provision: "5.6-4", decl: &decl{provs: entry("5.6-4", "    support: N/A\n")},
			want: finding.VerdictInconclusive, reason: "has no justification"},
		{name: "5.6-4A ADB open fails (V3)", ed: standard.V3_1_3, provision: "5.6-4A", findings: []finding.Finding{fADBOpen},
			want: finding.VerdictFail},
		{name: "5.6-4A console shell fails (V3)", ed: standard.V3_1_3, provision: "5.6-4A", findings: []finding.Finding{fBootConsole},
			want: finding.VerdictFail},

		// indicators only: 5.6-9, 5.9-1, 5.13-1
		{name: "5.6-9 hardening indicates", provision: "5.6-9", findings: []finding.Finding{fHardening}, want: finding.VerdictInconclusive},
		{name: "5.6-9 declared but unhardened", provision: "5.6-9", findings: []finding.Finding{fHardening}, decl: &decl{provs: entry("5.6-9", y)},
			want: finding.VerdictInconclusive, contradiction: "stack protector"},
		{name: "5.9-1 unresponsive indicates", provision: "5.9-1", findings: []finding.Finding{fUnresponsive}, want: finding.VerdictInconclusive},
		{name: "5.9-1 clean and declared", provision: "5.9-1", decl: &decl{provs: entry("5.9-1", y)}, want: finding.VerdictPass},
		{name: "5.13-1 unresponsive indicates", provision: "5.13-1", findings: []finding.Finding{fUnresponsive}, want: finding.VerdictInconclusive},
		{name: "5.13-1B takes 5.13-1 findings (V3)", ed: standard.V3_1_3, provision: "5.13-1B", findings: []finding.Finding{fUnresponsive},
			want: finding.VerdictInconclusive, indicating: 1},
		{name: "5.13-1A ignores network findings (V3)", ed: standard.V3_1_3, provision: "5.13-1A", findings: []finding.Finding{fUnresponsive},
			want: finding.VerdictNotAssessed},

		{name: "5.13-1 crash on malformed input fails", provision: "5.13-1", findings: []finding.Finding{fCrash}, extra: []string{checkUnresponsive},
			want: finding.VerdictFail, rule: "input-validation", failing: 1},
		{name: "5.13-1B crash on malformed input fails (V3)", ed: standard.V3_1_3, provision: "5.13-1B", findings: []finding.Finding{fCrash},
			want: finding.VerdictFail, failing: 1},
		{name: "5.13-1 declared, contradicted by a crash", provision: "5.13-1", findings: []finding.Finding{fCrash},
			decl: &decl{provs: entry("5.13-1", y)}, want: finding.VerdictFail, contradiction: "http-long-uri"},
		{name: "5.13-1 survived robustness probes, declared", provision: "5.13-1", extra: []string{checkUnresponsive},
			decl: &decl{provs: entry("5.13-1", y)}, want: finding.VerdictPass, basis: "evidence+declaration", reason: "robustness probes"},
		{name: "5.13-1 survived robustness probes, undeclared", provision: "5.13-1", extra: []string{checkUnresponsive},
			want: finding.VerdictInconclusive, reason: "cannot decide alone"},
		{name: "5.9-1 crash only indicates", provision: "5.9-1", findings: []finding.Finding{fCrash}, want: finding.VerdictInconclusive,
			indicating: 1},

		// a new check slots in through the provisions it cites
		{name: "new check high finding fails a ruled provision", provision: "5.1-1",
			findings: []finding.Finding{live("weak-password-policy", finding.High, "http", 80, "the web UI accepts the password 1234", "5.1-1")},
			want:     finding.VerdictFail, failing: 1},
		{name: "new check medium finding indicates on a ruled provision", provision: "5.5-5",
			findings: []finding.Finding{live("config-over-http", finding.Medium, "http", 80, "settings page without CSRF token", "5.5-5")},
			want:     finding.VerdictInconclusive, indicating: 1},

		// generic rule and declaration-only provisions
		{name: "generic high finding fails", provision: "5.8-2",
			findings: []finding.Finding{live("future-check", finding.High, "http", 80, "personal data sent without TLS", "5.8-2")},
			want:     finding.VerdictFail, rule: RuleGeneric},
		{name: "generic low finding indicates", provision: "5.8-2",
			findings: []finding.Finding{live("future-check", finding.Low, "http", 80, "personal data sent with weak TLS", "5.8-2")},
			want:     finding.VerdictInconclusive, rule: RuleGeneric},
		{name: "generic info finding does not count", provision: "5.8-2",
			findings: []finding.Finding{live("future-check", finding.Info, "http", 80, "note", "5.8-2")}, want: finding.VerdictNotAssessed},
		{name: "declaration-only described", provision: "5.3-3", decl: &decl{conds: "  update_mechanism: yes\n", provs: entry("5.3-3", y)},
			want: finding.VerdictPass, basis: "declaration", rule: RuleDeclaration},
		{name: "declaration-only bare Y", provision: "5.3-3", decl: &decl{provs: entry("5.3-3", "    support: Y\n")},
			want: finding.VerdictInconclusive, reason: "without saying how"},
		{name: "declaration-only undeclared", provision: "5.3-3", decl: &decl{}, want: finding.VerdictNotAssessed, reason: "no declaration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.input(t)
			a, err := Assess(cat, in)
			if err != nil {
				t.Fatal(err)
			}
			v, ok := a.Verdict(tc.provision)
			if !ok {
				t.Fatalf("no verdict for %s", tc.provision)
			}
			desc := fmt.Sprintf("%s: %s [%s, rule %s] %s / contradiction %q", v.Provision, v.Verdict, v.Basis, v.Rule, v.Reason, v.Contradiction)
			if v.Verdict != tc.want {
				t.Errorf("verdict %s, want %s\n%s", v.Verdict, tc.want, desc)
			}
			if tc.basis != "" && v.Basis != tc.basis {
				t.Errorf("basis %s, want %s\n%s", v.Basis, tc.basis, desc)
			}
			if tc.rule != "" && v.Rule != tc.rule {
				t.Errorf("rule %s, want %s\n%s", v.Rule, tc.rule, desc)
			}
			if tc.contradiction == "" && v.Contradiction != "" {
				t.Errorf("unexpected contradiction\n%s", desc)
			}
			if tc.contradiction != "" && !strings.Contains(v.Contradiction, tc.contradiction) {
				t.Errorf("contradiction lacks %q\n%s", tc.contradiction, desc)
			}
			if tc.reason != "" && !strings.Contains(v.Reason, tc.reason) {
				t.Errorf("reason lacks %q\n%s", tc.reason, desc)
			}
			var fails, inds int
			for _, r := range v.Findings {
				switch r.Role {
				case finding.RoleFails:
					fails++
				case finding.RoleIndicates:
					inds++
				}
			}
			if tc.failing != 0 && fails != tc.failing {
				t.Errorf("%d failing findings, want %d\n%s", fails, tc.failing, desc)
			}
			if tc.indicating != 0 && inds != tc.indicating {
				t.Errorf("%d indicating findings, want %d\n%s", inds, tc.indicating, desc)
			}
			if v.Verdict == finding.VerdictFail && v.Basis == "evidence" && fails == 0 {
				t.Errorf("FAIL on evidence without a failing finding\n%s", desc)
			}
			if v.Rule == "" || v.Reason == "" {
				t.Errorf("verdict without rule or reason\n%s", desc)
			}
		})
	}
}

// Every active provision gets exactly one verdict, in catalogue order,
// whatever the input.
func TestEveryProvisionHasAVerdict(t *testing.T) {
	cat := catalogue(t)
	for _, ed := range []standard.Edition{standard.V2_1_1, standard.V3_1_3} {
		for _, in := range []Input{
			{Edition: ed, Now: t0},
			{Edition: ed, Now: t0, Findings: []finding.Finding{fDefault, fKey, fUnresponsive, fHardening, fVendorNone},
				ChecksRun: liveChecks, Targets: Targets{Devices: []finding.Device{device()}, Images: []finding.FirmwareImage{image()}}},
		} {
			a, err := Assess(cat, in)
			if err != nil {
				t.Fatal(err)
			}
			active := cat.InEdition(ed)
			if len(a.Verdicts) != len(active) {
				t.Fatalf("%s: %d verdicts for %d provisions", ed, len(a.Verdicts), len(active))
			}
			total := 0
			for i, v := range a.Verdicts {
				if v.Provision != active[i].IDIn(ed) || v.Edition != string(ed) {
					t.Errorf("%s: verdict %d is for %s/%s, want %s", ed, i, v.Provision, v.Edition, active[i].IDIn(ed))
				}
				if !slices.Contains(finding.Verdicts(), v.Verdict) {
					t.Errorf("%s: unknown verdict %q", v.Provision, v.Verdict)
				}
			}
			for _, n := range a.Counts {
				total += n
			}
			if total != len(active) {
				t.Errorf("%s: counts add to %d", ed, total)
			}
			if len(a.PSTI) != 3 || len(a.Guidelines) != 13 {
				t.Errorf("%s: %d PSTI roll-ups, %d guideline roll-ups", ed, len(a.PSTI), len(a.Guidelines))
			}
		}
	}
}

func TestRollups(t *testing.T) {
	cat := catalogue(t)
	d := decl{conds: "  passwords_used: yes\n  preinstalled_passwords: no\n"}.parse(t, standard.V2_1_1)
	in := Input{Now: t0, Declarations: d, ChecksRun: liveChecks, VendorSites: []string{"https://example.com"},
		Targets: Targets{Devices: []finding.Device{device()}}}
	a, err := Assess(cat, in)
	if err != nil {
		t.Fatal(err)
	}
	if a.Edition != standard.V2_1_1 {
		t.Fatalf("edition from declarations: %s", a.Edition)
	}
	want := map[int]string{1: finding.VerdictPass, 2: finding.VerdictPass, 3: finding.VerdictPass}
	for _, r := range a.PSTI {
		if r.Verdict != want[r.Requirement] {
			t.Errorf("PSTI %d: %s (%s), want %s", r.Requirement, r.Verdict, r.Reason, want[r.Requirement])
		}
	}
	if r := a.PSTI[0]; strings.Join(r.Provisions, ",") != "5.1-1,5.1-2" || !strings.Contains(r.Reason, "5.1-2 NOT APPLICABLE") {
		t.Errorf("PSTI 1: %+v", r)
	}
	if len(a.PSTI[2].Unverified) == 0 {
		t.Error("PSTI 3 lost its unverified flags")
	}
	if a.PSTI[0].Basis != "evidence" || a.PSTI[1].Basis != "evidence+declaration" || a.PSTI[2].Basis != "declaration" ||
		!strings.Contains(a.PSTI[2].Reason, "not verified by a check") || strings.Contains(a.PSTI[0].Reason, "not verified") {
		t.Errorf("PSTI bases: %q %q %q / %s", a.PSTI[0].Basis, a.PSTI[1].Basis, a.PSTI[2].Basis, a.PSTI[2].Reason)
	}
	if combineBases(map[string]bool{"conditions": true}) != "conditions" || combineBases(nil) != "none" ||
		combineBases(map[string]bool{"evidence": true, "declaration": true}) != "evidence+declaration" {
		t.Error("combineBases")
	}

	// A default password fails PSTI 1 and guideline 1, nothing else.
	in.Findings = []finding.Finding{fDefault}
	a, err = Assess(cat, in)
	if err != nil {
		t.Fatal(err)
	}
	if a.PSTI[0].Verdict != finding.VerdictFail || !strings.Contains(a.PSTI[0].Reason, "not met") {
		t.Errorf("PSTI 1 with a default password: %+v", a.PSTI[0])
	}
	if a.PSTI[1].Verdict != finding.VerdictPass || a.PSTI[2].Verdict != finding.VerdictPass {
		t.Errorf("PSTI 2/3 changed: %+v %+v", a.PSTI[1], a.PSTI[2])
	}
	g := a.Guidelines[0]
	if g.Number != 1 || g.Verdict != finding.VerdictFail || g.Counts[finding.VerdictFail] != 1 || len(g.Provisions) != 5 {
		t.Errorf("guideline 1: %+v", g)
	}
	if a.Conformant() {
		t.Error("conformant with a FAIL")
	}
	if worst(nil) != finding.VerdictNotApplicable || worst([]string{finding.VerdictPass, finding.VerdictNotApplicable}) != finding.VerdictPass ||
		worst([]string{finding.VerdictPass, finding.VerdictNotAssessed, finding.VerdictInconclusive}) != finding.VerdictInconclusive {
		t.Error("worst() order")
	}

	// V3 notes that PSTI is defined against V2.1.1.
	a, err = Assess(cat, Input{Edition: standard.V3_1_3, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.PSTI[0].Reason, "V2.1.1") || a.PSTI[0].Verdict != finding.VerdictNotAssessed {
		t.Errorf("V3 PSTI 1: %+v", a.PSTI[0])
	}
}

func TestAssessErrors(t *testing.T) {
	cat := catalogue(t)
	d := decl{}.parse(t, standard.V3_1_3)
	if _, err := Assess(cat, Input{Edition: standard.V2_1_1, Declarations: d}); err == nil || !strings.Contains(err.Error(), "V3.1.3") {
		t.Errorf("edition mismatch: %v", err)
	}
	if _, err := Assess(cat, Input{Edition: "V9"}); err == nil {
		t.Error("unknown edition accepted")
	}
}

// The rule table refers only to real provisions and check ids, and every
// provision a check cites has a rule.
func TestRuleTable(t *testing.T) {
	cat := catalogue(t)
	known := append(slices.Clone(liveChecks), FirmwareChecks(true)...)
	known = append(known, checkShared, checkUnresponsive)
	seen := map[string]string{}
	for _, r := range Rules() {
		if r.ID == "" || r.Text == "" {
			t.Errorf("rule %+v lacks id or text", r.Provisions)
		}
		for _, id := range r.Provisions {
			if _, ok := cat.Provision(id); !ok {
				t.Errorf("rule %s: unknown provision %s", r.ID, id)
			}
			if other, dup := seen[id]; dup {
				t.Errorf("provision %s in rules %s and %s", id, other, r.ID)
			}
			seen[id] = r.ID
		}
		for _, m := range append(slices.Clone(r.Fails), r.Indicators...) {
			if !slices.Contains(known, m.Check) {
				t.Errorf("rule %s: unknown check %s", r.ID, m.Check)
			}
			for _, c := range m.Cites {
				if _, ok := cat.Provision(c); !ok {
					t.Errorf("rule %s: cites unknown provision %s", r.ID, c)
				}
			}
		}
		for _, s := range r.Sources {
			for _, c := range s.Checks {
				if !slices.Contains(known, c) {
					t.Errorf("rule %s: source needs unknown check %s", r.ID, c)
				}
			}
		}
	}
	for _, id := range []string{"5.1-1", "5.2-1", "5.2-3", "5.3-8", "5.4-1", "5.4-3", "5.5-1", "5.5-4", "5.6-1", "5.6-2", "5.6-4", "5.6-9", "5.9-1", "5.13-1", "5.13-1B"} {
		if _, ok := RuleFor(id); !ok {
			t.Errorf("provision %s is cited by a check but has no rule", id)
		}
	}
}

func TestFromReportAndCheckIDs(t *testing.T) {
	rep := &finding.Report{Devices: []finding.Device{device()}, Firmware: []finding.FirmwareImage{image()}, Findings: []finding.Finding{fDefault}}
	in := FromReport(rep, []string{"x"}, nil)
	if len(in.Findings) != 1 || len(in.Targets.Devices) != 1 || len(in.Targets.Images) != 1 || in.ChecksRun[0] != "x" {
		t.Errorf("FromReport: %+v", in)
	}
	ids := CheckIDs([]idOnly{"a", "b"})
	if strings.Join(ids, ",") != "a,b" {
		t.Errorf("CheckIDs: %v", ids)
	}
	if !slices.Contains(FirmwareChecks(true), checkKnownVuln) || slices.Contains(FirmwareChecks(false), checkKnownVuln) {
		t.Error("FirmwareChecks withOSV")
	}
}

type idOnly string

func (i idOnly) ID() string { return string(i) }

func TestWriteSummary(t *testing.T) {
	cat := catalogue(t)
	a, err := Assess(cat, Input{Now: t0, Findings: []finding.Finding{fDefault}, ChecksRun: liveChecks,
		Targets: Targets{Devices: []finding.Device{device()}}, Declarations: decl{provs: entry("5.1-1", y)}.parse(t, standard.V2_1_1)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteSummary(&buf, a); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"EN 303 645 V2.1.1 assessment", "1 Passwords", "FAIL", "CONTRADICTION: declared supported (d.yaml:",
		"5.1-1", "68 provisions:"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// 4-1 judges the other verdicts: recommendations failed by evidence need a
// justification too; those out of scope by conditions need nothing.
func TestReporting(t *testing.T) {
	cat := catalogue(t)
	var justified strings.Builder
	for _, p := range cat.Filter(standard.Filter{Edition: standard.V2_1_1, Level: standard.Recommended}) {
		justified.WriteString(entry(p.ID, "    support: N\n    justification: not in this product's scope\n"))
	}
	for _, tc := range []struct {
		name     string
		conds    string
		provs    string
		findings []finding.Finding
		want     string
		reason   string
	}{
		{"every recommendation justified", "", justified.String(), nil, finding.VerdictPass, "carries a justification"},
		{"evidence fails a recommendation without justification", "", entry("5.5-4", y), []finding.Finding{fOpenMQTT},
			finding.VerdictFail, "5.5-4 (failed by evidence)"},
		{"evidence fails a justified recommendation", "", strings.Replace(justified.String(),
			"  5.5-4:\n    support: N\n    justification: not in this product's scope\n",
			"  5.5-4:\n    support: Y\n    justification: the MQTT broker is local only\n", 1), []finding.Finding{fOpenMQTT},
			finding.VerdictPass, ""},
		{"conditions take recommendations out of scope", "  telemetry: no\n", "", nil, finding.VerdictInconclusive, "neither decided nor declared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decl{conds: tc.conds, provs: tc.provs}.parse(t, standard.V2_1_1)
			a, err := Assess(cat, Input{Now: t0, Declarations: d, Findings: tc.findings, ChecksRun: liveChecks,
				Targets: Targets{Devices: []finding.Device{device()}}})
			if err != nil {
				t.Fatal(err)
			}
			v, _ := a.Verdict("4-1")
			if v.Verdict != tc.want || !strings.Contains(v.Reason, tc.reason) {
				t.Errorf("4-1: %s %q, want %s with %q", v.Verdict, v.Reason, tc.want, tc.reason)
			}
		})
	}
	// telemetry: no takes 5.10-1 and 6-4 (R C(6)) out of what 4-1 waits for.
	open := func(conds string) int {
		d := decl{conds: conds}.parse(t, standard.V2_1_1)
		a, err := Assess(cat, Input{Now: t0, Declarations: d})
		if err != nil {
			t.Fatal(err)
		}
		v, _ := a.Verdict("4-1")
		var n int
		if _, err := fmt.Sscanf(v.Reason, "%d recommendations", &n); err != nil {
			t.Fatalf("4-1 reason %q: %v", v.Reason, err)
		}
		return n
	}
	if all, scoped := open(""), open("  telemetry: no\n"); all != 35 || scoped != 33 {
		t.Errorf("open recommendations: %d without conditions (want 35), %d with telemetry: no (want 33)", all, scoped)
	}
}
