package report

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/iotcop/iotcop/assess"
	"github.com/iotcop/iotcop/declare"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/standard"
)

const htmlDeclarations = `schema: iotcop/declarations/v1
edition: V2.1.1
product:
  manufacturer: Example Devices Ltd
  address: 1 High Street, Exampleton
  model: CamOne <Pro>
  hardware_version: rev B
  firmware_version: 1.4.2
  product_type: smart camera
support_period:
  end: 2030-12-31
  published_at: https://example.com/support
vulnerability_disclosure:
  url: https://example.com/.well-known/security.txt
conditions:
  passwords_used: yes
  preinstalled_passwords: no
  telemetry: no
provisions:
  5.1-1:
    support: Y
    implementation: unique password on each unit's label
  5.5-1:
    support: Y
    implementation: TLS 1.2+ everywhere
  5.2-3:
    support: N
    justification: no component monitoring yet
`

// assessedSample is the report of sample() with an assessment made from
// it and a declarations file, at fixed times.
func assessedSample(t *testing.T) (*finding.Report, *assess.Assessment) {
	t.Helper()
	rep := sample()
	cat, err := standard.Load()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 5, 0, time.UTC)
	d, probs := declare.Parse(cat, "declarations.yaml", []byte(htmlDeclarations), now)
	if len(probs) != 0 {
		t.Fatalf("declarations: %v", probs)
	}
	in := assess.FromReport(rep, []string{finding.CheckUnauthenticatedAccess, finding.CheckDefaultCredentials,
		finding.CheckCleartextProtocol, finding.CheckExposedDebugService, finding.CheckWeakSSH, finding.CheckWeakTLS,
		finding.CheckVulnDisclosure}, d)
	in.Now = now
	a, err := assess.Assess(cat, in)
	if err != nil {
		t.Fatal(err)
	}
	rep.Verdicts = a.Verdicts
	return rep, a
}

func TestHTMLGolden(t *testing.T) {
	rep, a := assessedSample(t)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rep, a); err != nil {
		t.Fatal(err)
	}
	golden(t, "html-report.html", buf.Bytes())

	buf.Reset()
	if err := WriteHTML(&buf, firmwareSample(), nil); err != nil {
		t.Fatal(err)
	}
	golden(t, "html-findings.html", buf.Bytes())
}

// parse checks the page is well-formed HTML and returns its tree.
func parse(t *testing.T, page []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("not HTML: %v", err)
	}
	if !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) {
		t.Error("no doctype")
	}
	return doc
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if strings.EqualFold(a.Key, key) {
			return a.Val, true
		}
	}
	return "", false
}

// The page needs no network and runs no script: no element loads
// anything, every link is in-page, the CSS imports nothing.
func TestHTMLSelfContained(t *testing.T) {
	rep, a := assessedSample(t)
	for name, page := range map[string]func(*bytes.Buffer) error{
		"assessment":    func(b *bytes.Buffer) error { return WriteHTML(b, rep, a) },
		"findings only": func(b *bytes.Buffer) error { return WriteHTML(b, firmwareSample(), nil) },
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := page(&buf); err != nil {
				t.Fatal(err)
			}
			doc := parse(t, buf.Bytes())
			walk(doc, func(n *html.Node) {
				if n.Type != html.ElementNode {
					return
				}
				switch n.Data {
				case "script", "link", "iframe", "object", "embed", "img", "base", "form":
					t.Errorf("element <%s> in a self-contained report", n.Data)
				}
				for _, a := range n.Attr {
					k := strings.ToLower(a.Key)
					if strings.HasPrefix(k, "on") {
						t.Errorf("<%s %s=...>: event handler", n.Data, a.Key)
					}
					switch k {
					case "src", "srcset", "action", "poster", "data", "xlink:href":
						t.Errorf("<%s %s=%q> loads a resource", n.Data, a.Key, a.Val)
					case "href":
						if !strings.HasPrefix(a.Val, "#") {
							t.Errorf("<%s href=%q> leaves the page", n.Data, a.Val)
						}
					}
				}
				if n.Data == "style" && n.FirstChild != nil {
					css := strings.ToLower(n.FirstChild.Data)
					if strings.Contains(css, "url(") || strings.Contains(css, "@import") {
						t.Error("the stylesheet loads something")
					}
				}
			})
			for _, bad := range []string{`src="http`, `href="http`, `src='http`, `href='http`, "<script"} {
				if bytes.Contains(bytes.ToLower(buf.Bytes()), []byte(bad)) {
					t.Errorf("page contains %s", bad)
				}
			}
		})
	}
}

// Every link points at an element of the page, and the sections a reader
// looks for are there.
func TestHTMLStructure(t *testing.T) {
	rep, a := assessedSample(t)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rep, a); err != nil {
		t.Fatal(err)
	}
	doc := parse(t, buf.Bytes())
	ids := map[string]bool{}
	var links []string
	svg, rects, provisionRows := 0, 0, 0
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if id, ok := attr(n, "id"); ok {
			if ids[id] {
				t.Errorf("duplicate id %q", id)
			}
			ids[id] = true
			if strings.HasPrefix(id, "p-") {
				provisionRows++
			}
		}
		if h, ok := attr(n, "href"); ok {
			links = append(links, strings.TrimPrefix(h, "#"))
		}
		switch n.Data {
		case "svg":
			svg++
		case "rect":
			rects++
		}
	})
	for _, id := range []string{"overview", "psti-1", "psti-2", "psti-3", "devices", "findings", "provisions", "f-1", "f-2", "f-3", "p-5.1-1", "p-4-1"} {
		if !ids[id] {
			t.Errorf("no element with id %q", id)
		}
	}
	for _, l := range links {
		if !ids[l] {
			t.Errorf("link to #%s, which does not exist", l)
		}
	}
	if len(links) < 6 {
		t.Errorf("only %d in-page links", len(links))
	}
	if svg != 1 || rects < 5+13 {
		t.Errorf("%d svg charts with %d rects", svg, rects)
	}
	if provisionRows != len(a.Verdicts) {
		t.Errorf("%d provision rows for %d verdicts", provisionRows, len(a.Verdicts))
	}
	page := buf.String()
	for _, want := range []string{
		"Security assessment of Example Devices Ltd CamOne &lt;Pro&gt;",
		"This product does not meet UK PSTI requirement 1 (passwords).",
		"✘ Does not meet the requirement",
		"✔ Meets the requirement",
		"Contradiction: declared supported (declarations.yaml:",
		"How to fix:</strong> Ship without a universal default password.",
		"Security updates until</dt><dd>31 December 2030",
		"Provision titles are paraphrases",
		// root has a preset password carries no remediation: the default one shows.
		"How to fix:</strong> Remove preset passwords from the image",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// Secrets stay redacted unless revealed; untrusted text (banners,
// evidence from a device) is escaped, never markup.
func TestHTMLRedactionAndEscaping(t *testing.T) {
	rep, a := assessedSample(t)
	rep.Findings = append(rep.Findings, finding.Finding{Check: "unauthenticated-access", Provisions: []string{"5.5-4"},
		Severity: finding.High, Title: `banner <script>alert(1)</script>`, Host: "127.77.0.2", Port: 80, Transport: "tcp",
		Protocol: "http", Evidence: map[string]any{"body": `"><img src=http://evil.example/x onerror=alert(1)>`,
			"nested": map[string]any{"key": finding.Secret("hunter22")}, "list": []string{"a", "b"}}})
	rep.Finalize()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rep, a); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, leak := range []string{"xc3511", "hunter22", "<script>alert", "<img", "admin<"} {
		if strings.Contains(page, leak) {
			t.Errorf("page contains %q", leak)
		}
	}
	for _, want := range []string{"x*****", "h*******", "banner &lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=http://evil.example/x"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	parse(t, buf.Bytes())

	rep.RevealSecrets()
	buf.Reset()
	if err := WriteHTML(&buf, rep, a); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "xc3511") || !strings.Contains(buf.String(), "hunter22") {
		t.Error("--show-secrets did not reveal the secrets")
	}
}

// Every check id of the contract has a default fix.
func TestDefaultFixes(t *testing.T) {
	for _, id := range []string{finding.CheckDefaultCredentials, finding.CheckUnauthenticatedAccess, finding.CheckCleartextProtocol,
		finding.CheckWeakTLS, finding.CheckWeakSSH, finding.CheckExposedDebugService, finding.CheckVulnDisclosure,
		finding.CheckHardCodedCredentials, finding.CheckEmbeddedPrivateKey, finding.CheckEmbeddedSecret,
		finding.CheckInsecureBootService, finding.CheckBinaryHardening, finding.CheckKnownVulnerability,
		finding.CheckDeviceUnresponsive, finding.CheckSharedSecret} {
		if defaultFixes[id] == "" {
			t.Errorf("no default fix for %s", id)
		}
	}
}

func TestEvidenceText(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{finding.Secret("abcdef"), "a*****"},
		{[]string{"x", "y"}, "x\ny"},
		{[]any{1, finding.Secret("pw")}, "1\n**"},
		{map[string]any{"b": 2, "a": finding.Secret("secret")}, "a: s*****\nb: 2"},
		{map[string]string{"z": "1", "y": "2"}, "y: 2\nz: 1"},
		{42, "42"},
	} {
		if got := evidenceText(tc.in); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", maxEvidenceRunes+10)
	if got := clip(long); !strings.HasSuffix(got, "(truncated; the JSON report has it all)") || len([]rune(got)) > maxEvidenceRunes+50 {
		t.Errorf("clip: %d runes", len([]rune(got)))
	}
}

// The JSON report with verdicts still satisfies the contract.
func TestVerdictsInJSONContract(t *testing.T) {
	rep, a := assessedSample(t)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	if err := Validate(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"verdicts": [`) || len(rep.Verdicts) != len(a.Verdicts) {
		t.Error("no verdicts in the JSON report")
	}
	bad := strings.Replace(buf.String(), `"verdict": "FAIL"`, `"verdict": "MAYBE"`, 1)
	if err := Validate([]byte(bad)); err == nil {
		t.Error("schema accepts an unknown verdict")
	}
}

// TestHTMLInChromium opens the report in headless Chromium (Debian
// package chromium): the rendered DOM holds the key elements, nothing is
// logged to the console or fetched from the network, and a screenshot
// renders.
func TestHTMLInChromium(t *testing.T) {
	daemontest.Require(t, "chromium")
	rep, a := assessedSample(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rep, a); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (stdout, stderr []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
			"--user-data-dir=" + filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0"}
		cmd := exec.CommandContext(ctx, "chromium", append(append(base, args...), "file://"+page)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, errb.Bytes())
		}
		return out.Bytes(), errb.Bytes()
	}
	dom, logs := run("--dump-dom")
	for _, want := range []string{`id="psti-1"`, `id="psti-3"`, `id="provisions"`, `id="p-5.1-1"`, "<svg", "Does not meet the requirement", `id="f-1"`} {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("rendered DOM lacks %s", want)
		}
	}
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "net::ERR_") {
			t.Errorf("chromium logged: %s", line)
		}
	}
	shot := filepath.Join(dir, "report.png")
	run("--window-size=1200,2400", "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 2400 {
		t.Errorf("screenshot is %v", b)
	}
	// The headline banner (light red for a failed PSTI requirement) is drawn.
	red := 0
	for y := 0; y < 800; y += 4 {
		for x := 0; x < 1200; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 == 0xff && g>>8 == 0xeb && bl>>8 == 0xe9 {
				red++
			}
		}
	}
	if red < 100 {
		t.Errorf("the failed-requirement banner is not visible in the screenshot (%d pixels)", red)
	}
}
