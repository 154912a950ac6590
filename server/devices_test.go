package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/report"
)

// TestDevicePages: the device list a page at a time, in the API (?limit,
// ?after, "next") and in the dashboard (Next page links), with the whole
// inventory still the default answer of the API.
func TestDevicePages(t *testing.T) {
	eachBackend(t, func(t *testing.T, location string) {
		f := newFixtureAt(t, location, Options{}, nil)
		rep := &finding.Report{Schema: finding.SchemaV1, Tool: finding.Tool{Name: "iotcop", Version: "t"},
			StartedAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
		const n = 7
		for i := range n {
			rep.Devices = append(rep.Devices, finding.Device{Address: fmt.Sprintf("10.0.0.%d", i+1)})
		}
		rep.FinishedAt = rep.StartedAt.Add(time.Second)
		rep.Finalize()
		var buf bytes.Buffer
		report.WriteJSON(&buf, rep)
		if _, err := f.st.Import(context.Background(), buf.Bytes(), "t"); err != nil {
			t.Fatal(err)
		}
		tok := f.token(t, "viewer", "read")
		type page struct {
			Devices []struct{ Address string } `json:"devices"`
			Next    string                     `json:"next"`
		}
		get := func(query string) (int, page) {
			code, body := api(t, f.ts.URL, "GET", "/api/v1/devices"+query, tok, nil)
			var p page
			if code == http.StatusOK {
				if err := json.Unmarshal(body, &p); err != nil {
					t.Fatal(err)
				}
			}
			return code, p
		}
		if code, all := get(""); code != http.StatusOK || len(all.Devices) != n || all.Next != "" {
			t.Fatalf("whole inventory: %d, %+v", code, all)
		}
		var seen []string
		after := ""
		for pages := 0; ; pages++ {
			code, p := get("?limit=3&after=" + after)
			if code != http.StatusOK || pages > n {
				t.Fatalf("page after %q: %d", after, code)
			}
			for _, d := range p.Devices {
				seen = append(seen, d.Address)
			}
			if p.Next == "" {
				break
			}
			after = p.Next
		}
		if strings.Join(seen, " ") != "10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6 10.0.0.7" {
			t.Fatalf("pages gave %v", seen)
		}
		for _, bad := range []string{"?limit=0", "?limit=x", "?limit=10001"} {
			if code, _ := get(bad); code != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", bad, code)
			}
		}
		b := f.login(t, "viewer")
		first := b.get(t, "/devices", http.StatusOK)
		if !strings.Contains(first, `href="/devices/10.0.0.7"`) || strings.Contains(first, `id="devices-next"`) {
			t.Fatal("a small inventory fits on the first page, without a next link")
		}
		if later := b.get(t, "/devices?after=10.0.0.5", http.StatusOK); strings.Contains(later, `href="/devices/10.0.0.5"`) || !strings.Contains(later, `href="/devices/10.0.0.6"`) {
			t.Fatal("the page after 10.0.0.5 must start at 10.0.0.6")
		}
		// More devices than a page: the dashboard links to the next one.
		more := *rep
		more.Devices = nil
		for i := range devicesPerPage {
			more.Devices = append(more.Devices, finding.Device{Address: fmt.Sprintf("10.1.%d.%d", i/200, i%200+1)})
		}
		more.StartedAt = rep.StartedAt.Add(time.Hour)
		more.FinishedAt = more.StartedAt.Add(time.Second)
		more.Finalize()
		buf.Reset()
		report.WriteJSON(&buf, &more)
		if _, err := f.st.Import(context.Background(), buf.Bytes(), "t"); err != nil {
			t.Fatal(err)
		}
		first = b.get(t, "/devices", http.StatusOK)
		if got := strings.Count(first, `<tr><td><a href="/devices/`); got != devicesPerPage || !strings.Contains(first, `id="devices-next"`) {
			t.Fatalf("first page shows %d devices (want %d) and a next link: %v", got, devicesPerPage, strings.Contains(first, `id="devices-next"`))
		}
		// 7 + 500 devices: the page the link leads to holds the other 7.
		link := regexp.MustCompile(`href="(/devices\?after=[^"]+)" id="devices-next"`).FindStringSubmatch(first)
		if link == nil {
			t.Fatal("no next link")
		}
		second := b.get(t, html.UnescapeString(link[1]), http.StatusOK)
		if got := strings.Count(second, `<tr><td><a href="/devices/`); got != 7 || strings.Contains(second, `id="devices-next"`) {
			t.Fatalf("second page shows %d devices, want 7 and no next link", got)
		}
	})
}
