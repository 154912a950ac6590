package check

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/disclosure"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

func securityTxt(expires time.Time, extra string) string {
	return "Contact: mailto:psirt@vendor.example\nExpires: " + expires.UTC().Format(time.RFC3339) + "\n" + extra
}

// servePolicy serves body at the canonical path (404 elsewhere).
func servePolicy(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if body == "" || r.URL.Path != disclosure.CanonicalPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, body)
	}
}

func problemCodes(f finding.Finding) []string {
	var out []string
	ps, _ := f.Evidence["problems"].([]string)
	for _, p := range ps {
		code, _, _ := strings.Cut(p, ":")
		out = append(out, code)
	}
	return out
}

func TestDisclosureDeviceInterface(t *testing.T) {
	t.Parallel()
	now := time.Now()
	good := securityTxt(now.AddDate(0, 6, 0), "")
	tests := []struct {
		name          string
		https, plain  string // policy served on each ("" = 404; "-" = no such server)
		wantTitle     string // "" = no finding
		wantProblems  []string
		wantAttempts  int
		wantFoundPath string
	}{
		{name: "valid over https", https: good, plain: "", wantAttempts: 1},
		{name: "missing", https: "", plain: "", wantTitle: "no vulnerability disclosure policy (security.txt) on the device's web interface",
			wantProblems: []string{disclosure.ProblemMissing}, wantAttempts: 4},
		{name: "plain http only", https: "-", plain: good, wantTitle: "the device's security.txt has problems",
			wantProblems: []string{disclosure.ProblemNotHTTPS}, wantAttempts: 1, wantFoundPath: disclosure.CanonicalPath},
		{name: "expired", https: securityTxt(now.AddDate(0, -2, 0), ""), plain: "-", wantTitle: "the device's security.txt has problems",
			wantProblems: []string{disclosure.ProblemExpired}, wantAttempts: 1, wantFoundPath: disclosure.CanonicalPath},
		{name: "no contact", https: "Expires: " + now.AddDate(0, 6, 0).UTC().Format(time.RFC3339) + "\n", plain: "-",
			wantTitle: "the device's security.txt has problems", wantProblems: []string{disclosure.ProblemNoContact}, wantAttempts: 1, wantFoundPath: disclosure.CanonicalPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host := daemontest.Addr()
			dev := &Device{Address: host}
			for _, srv := range []struct {
				body   string
				useTLS bool
			}{{tc.https, true}, {tc.plain, false}} {
				if srv.body == "-" {
					continue
				}
				ws := startWebServer(t, host, srv.useTLS, servePolicy(srv.body))
				dev.Services = append(dev.Services, ws.service())
			}
			fs, err := (&Disclosure{}).Run(context.Background(), dev)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantTitle == "" {
				if len(fs) != 0 {
					t.Fatalf("findings %v %v, want none", titles(fs), fs)
				}
				return
			}
			if len(fs) != 1 {
				t.Fatalf("findings %v, want one", titles(fs))
			}
			f := fs[0]
			if f.Check != finding.CheckVulnDisclosure || f.Severity != finding.Medium || f.Title != tc.wantTitle || !slices.Equal(f.Provisions, []string{"5.2-1"}) {
				t.Fatalf("finding %s %s %q %v", f.Check, f.Severity, f.Title, f.Provisions)
			}
			if got := problemCodes(f); !slices.Equal(got, tc.wantProblems) {
				t.Fatalf("problems %v, want %v", f.Evidence["problems"], tc.wantProblems)
			}
			if got := f.Evidence["attempts"].([]string); len(got) != tc.wantAttempts {
				t.Fatalf("attempts %v, want %d", got, tc.wantAttempts)
			}
			if tc.wantFoundPath != "" && !strings.HasSuffix(f.Evidence["url"].(string), tc.wantFoundPath) {
				t.Fatalf("url %v", f.Evidence["url"])
			}
			// The HTTPS interface is the one the finding names.
			if tc.https != "-" && f.Port != dev.Services[0].Endpoint.Port {
				t.Fatalf("finding on port %d, want the HTTPS one %d", f.Port, dev.Services[0].Endpoint.Port)
			}
		})
	}
}

func ssdpService(host, manufacturerURL string) Service {
	return svc(host, 1900, "udp", &proto.Identity{Protocol: "ssdp", Info: map[string]string{"manufacturer_url": manufacturerURL}})
}

func TestDisclosureManufacturer(t *testing.T) {
	t.Parallel()
	now := time.Now()
	good := securityTxt(now.AddDate(0, 6, 0), "")

	t.Run("public URL from the device is not fetched", func(t *testing.T) {
		t.Parallel()
		host := daemontest.Addr()
		web := startWebServer(t, host, true, servePolicy(good))
		dev := &Device{Address: host, Services: []Service{web.service(), ssdpService(host, "http://www.vendor.example/"), ssdpService(host, "https://203.0.113.5/support")}}
		fs, err := (&Disclosure{}).Run(context.Background(), dev)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 1 || fs[0].Severity != finding.Info || fs[0].Port != 1900 || !strings.Contains(fs[0].Title, "was not checked") {
			t.Fatalf("findings %v", titles(fs))
		}
		nf := fs[0].Evidence["manufacturer_url_not_fetched"].([]string)
		if len(nf) != 2 || !strings.HasSuffix(nf[0], "not fetched: pass --vendor-url to check it") || !strings.HasPrefix(nf[1], "https://203.0.113.5/") {
			t.Fatalf("not fetched %v", nf)
		}
	})

	t.Run("not-fetched URL joins the device finding", func(t *testing.T) {
		t.Parallel()
		host := daemontest.Addr()
		web := startWebServer(t, host, true, servePolicy(""))
		dev := &Device{Address: host, Services: []Service{web.service(), ssdpService(host, "http://www.vendor.example/")}}
		fs, err := (&Disclosure{}).Run(context.Background(), dev)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 1 || fs[0].Severity != finding.Medium || fs[0].Evidence["manufacturer_url_not_fetched"] == nil {
			t.Fatalf("findings %v %v", titles(fs), fs)
		}
	})

	t.Run("LAN manufacturer URL with an expired policy", func(t *testing.T) {
		t.Parallel()
		host := daemontest.Addr()
		vendor := startWebServer(t, daemontest.Addr(), false, servePolicy(securityTxt(now.AddDate(0, -1, 0), "")))
		url := "http://" + vendor.srv.Listener.Addr().String() + "/"
		dev := &Device{Address: host, Services: []Service{ssdpService(host, url)}}
		fs, err := (&Disclosure{}).Run(context.Background(), dev)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 1 || fs[0].Severity != finding.High || !strings.Contains(fs[0].Title, "the manufacturer's security.txt") || fs[0].Port != 1900 {
			t.Fatalf("findings %v", titles(fs))
		}
		if got := problemCodes(fs[0]); !slices.Equal(got, []string{disclosure.ProblemNotHTTPS, disclosure.ProblemExpired}) {
			t.Fatalf("problems %v", fs[0].Evidence["problems"])
		}
		if fs[0].Evidence["source"] != "manufacturerURL from the UPnP description" || fs[0].Evidence["psti"] == nil {
			t.Fatalf("evidence %v", fs[0].Evidence)
		}
	})

	t.Run("vendor URL given by the user, fetched once for every device", func(t *testing.T) {
		t.Parallel()
		vendor := startWebServer(t, daemontest.Addr(), true, servePolicy(""))
		c, err := NewDisclosure(vendor.srv.URL + "/support/")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			host := daemontest.Addr()
			dev := &Device{Address: host, Services: []Service{svc(host, 22, "tcp", &proto.Identity{Protocol: "ssh"})}}
			if i == 2 {
				// This one names the same site in UPnP: the finding goes there.
				dev.Services = append(dev.Services, ssdpService(host, vendor.srv.URL+"/products"))
			}
			fs, err := c.Run(context.Background(), dev)
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != 1 || fs[0].Severity != finding.High || !strings.HasPrefix(fs[0].Title, "no vulnerability disclosure policy (security.txt) on the manufacturer's site") {
				t.Fatalf("device %d findings %v", i, titles(fs))
			}
			wantPort := 22
			if i == 2 {
				wantPort = 1900
			}
			if fs[0].Port != wantPort || fs[0].Evidence["source"] != "--vendor-url" || fs[0].Evidence["manufacturer_url_not_fetched"] != nil {
				t.Fatalf("device %d finding %+v", i, fs[0])
			}
		}
		if n := vendor.count("GET " + disclosure.CanonicalPath); n != 1 {
			t.Fatalf("canonical path fetched %d times, want once per scan", n)
		}
	})

	t.Run("valid vendor policy makes no finding", func(t *testing.T) {
		t.Parallel()
		vendor := startWebServer(t, daemontest.Addr(), true, servePolicy(good))
		c, err := NewDisclosure(vendor.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		host := daemontest.Addr()
		fs, err := c.Run(context.Background(), &Device{Address: host, Services: []Service{svc(host, 22, "tcp", &proto.Identity{Protocol: "ssh"})}})
		if err != nil || len(fs) != 0 {
			t.Fatalf("findings %v, err %v", titles(fs), err)
		}
	})
}

// TestDisclosureLighttpd: the real lighttpd over HTTPS, first with its
// default MIME table (security.txt served as application/octet-stream),
// then configured for text/plain.
func TestDisclosureLighttpd(t *testing.T) {
	t.Parallel()
	body := securityTxt(time.Now().AddDate(0, 6, 0), "Policy: https://vendor.example/disclosure\n")
	for _, tc := range []struct {
		name  string
		extra string
		want  []string
	}{
		{name: "default MIME types", want: []string{disclosure.ProblemContentType}},
		{name: "text/plain", extra: `mimetype.assign += (".txt" => "text/plain; charset=utf-8")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := daemontest.Lighttpd(t, daemontest.LighttpdOptions{
				TLS: true, Auth: daemontest.HTTPAuth{None: true}, Extra: tc.extra,
				Files: map[string]string{".well-known/security.txt": body},
			})
			dev := &Device{Address: s.Host, Services: []Service{{Endpoint: s.Endpoint(), Identity: &proto.Identity{Protocol: "http", TLS: true, Product: "lighttpd"}}}}
			fs, err := (&Disclosure{}).Run(daemontest.Context(t), dev)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.want) == 0 {
				if len(fs) != 0 {
					t.Fatalf("findings %v %v", titles(fs), fs)
				}
				return
			}
			if len(fs) != 1 || !slices.Equal(problemCodes(fs[0]), tc.want) {
				t.Fatalf("findings %v %v", titles(fs), fs)
			}
		})
	}
}

func TestNewDisclosure(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"vendor.example":              "https://vendor.example",
		"https://vendor.example/sec/": "https://vendor.example",
		"":                            "",
	} {
		c, err := NewDisclosure(in)
		if err != nil || c.VendorURL != want {
			t.Errorf("NewDisclosure(%q) = %q, %v; want %q", in, c.VendorURL, err, want)
		}
	}
	if _, err := NewDisclosure("ftp://vendor.example"); err == nil || !strings.Contains(err.Error(), "--vendor-url") {
		t.Errorf("ftp URL: %v", err)
	}
}
