// Command compare scores benchmark runs: it reads the virtual lab's
// manifest (what really runs where) and the outputs of iotcop, nmap and
// hydra on the same targets, and prints how many services each tool named
// correctly and how many credentials each found, missed or invented.
// It is used by bench/scan.sh and bench/credsbench (bench/creds.sh).
package main

import (
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: compare scan|creds [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "scan":
		err = scanCmd(os.Args[2:])
	case "creds":
		err = credsCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
}

type key struct {
	addr string
	port int
}

// manifest is the subset of "iotcop lab --manifest" output used here.
type manifest []struct {
	Address  string
	Services []struct {
		Protocol        string
		Port            int
		Transport       string
		DescriptionPort int
	}
}

// expectedTCP maps every TCP service of the lab to its protocol name as
// iotcop reports it (https → http over TLS, mqtts → mqtt, upnp's
// description server → http).
func expectedTCP(path string) (map[key]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	out := map[key]string{}
	for _, d := range m {
		for _, s := range d.Services {
			if s.Transport == "tcp" {
				out[key{d.Address, s.Port}] = normalise(s.Protocol)
			}
			if s.DescriptionPort != 0 {
				out[key{d.Address, s.DescriptionPort}] = "http"
			}
		}
	}
	return out, nil
}

// normalise maps service names of every tool onto one vocabulary.
func normalise(name string) string {
	name = strings.ToLower(strings.TrimPrefix(name, "ssl/"))
	switch name {
	case "https", "http-proxy", "http-alt", "https-alt", "upnp", "http-mgmt", "tr-069", "cwmp":
		return "http"
	case "mqtts", "secure-mqtt":
		return "mqtt"
	case "rtsps":
		return "rtsp"
	case "android-adb", "freeciv-adb":
		return "adb"
	case "telnets":
		return "telnet"
	}
	return name
}

type report struct {
	Devices []struct {
		Address  string
		Services []struct {
			Port      int
			Transport string
			Protocol  string
		}
	}
	Findings []struct {
		Check    string
		Host     string
		Port     int
		Evidence map[string]any
	}
}

func readReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("iotcop report %s: %w", path, err)
	}
	return &r, nil
}

type nmapRun struct {
	Hosts []struct {
		Addresses []struct {
			Addr string `xml:"addr,attr"`
		} `xml:"address"`
		Ports []struct {
			Protocol string `xml:"protocol,attr"`
			PortID   int    `xml:"portid,attr"`
			State    struct {
				State string `xml:"state,attr"`
			} `xml:"state"`
			Service struct {
				Name   string `xml:"name,attr"`
				Tunnel string `xml:"tunnel,attr"`
				Method string `xml:"method,attr"`
			} `xml:"service"`
		} `xml:"ports>port"`
	} `xml:"host"`
}

func readNmap(path string) (map[key]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var run nmapRun
	if err := xml.Unmarshal(b, &run); err != nil {
		return nil, fmt.Errorf("nmap xml %s: %w", path, err)
	}
	out := map[key]string{}
	for _, h := range run.Hosts {
		if len(h.Addresses) == 0 {
			continue
		}
		for _, p := range h.Ports {
			if p.Protocol == "tcp" && p.State.State == "open" {
				name := p.Service.Name
				// Without -sV nmap only looks the port number up in a table;
				// that is a guess, not identification.
				if p.Service.Method == "table" {
					name = "(table) " + name
				}
				out[key{h.Addresses[0].Addr, p.PortID}] = normalise(name)
			}
		}
	}
	return out, nil
}

// score counts open ports found and services named as the lab runs them.
func score(expected, got map[key]string) (open, named int) {
	for k, want := range expected {
		name, ok := got[k]
		if !ok {
			continue
		}
		open++
		if name == want {
			named++
		}
	}
	return open, named
}

func scanCmd(args []string) error {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	man := fs.String("manifest", "", "lab manifest JSON")
	iot := fs.String("iotcop", "", "iotcop JSON report")
	var nmaps multiFlag
	fs.Var(&nmaps, "nmap", "label=nmap XML output (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	expected, err := expectedTCP(*man)
	if err != nil {
		return err
	}
	rep, err := readReport(*iot)
	if err != nil {
		return err
	}
	got := map[key]string{}
	for _, d := range rep.Devices {
		for _, s := range d.Services {
			if s.Transport == "tcp" {
				got[key{d.Address, s.Port}] = normalise(s.Protocol)
			}
		}
	}
	open, named := score(expected, got)
	fmt.Printf("%-22s open %4d/%d  named correctly %4d/%d\n", "iotcop", open, len(expected), named, len(expected))
	for _, n := range nmaps {
		label, path, _ := strings.Cut(n, "=")
		m, err := readNmap(path)
		if err != nil {
			return err
		}
		open, named := score(expected, m)
		fmt.Printf("%-22s open %4d/%d  named correctly %4d/%d\n", label, open, len(expected), named, len(expected))
	}
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// claim is a credential a tool reported on a target.
type claim struct {
	host       string
	port       int
	user, pass string
}

// credsCmd scores the credentials each tool claimed against the truth and
// prints, per target and overall, each tool's wall time, found/missed/false
// and the time ratio hydra/iotcop (above 1: iotcop was faster).
// -expect lines: "label host port user pass"; user and pass "-" mark a
// target with no valid pair at all (a hostile fake prompt), where every
// claim is false.
func credsCmd(args []string) error {
	fs := flag.NewFlagSet("creds", flag.ContinueOnError)
	expectPath := fs.String("expect", "", "file of 'label host port user pass' lines (the valid pairs)")
	var iotcopFiles, hydraFiles, times multiFlag
	fs.Var(&iotcopFiles, "iotcop", "iotcop JSON report, run with --show-secrets (repeatable)")
	fs.Var(&hydraFiles, "hydra", "hydra -b json output file, or label=file (repeatable)")
	fs.Var(&times, "time", "tool=seconds of wall time of the whole run, or tool/label=seconds for one target (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*expectPath)
	if err != nil {
		return err
	}
	truth := map[claim]bool{}
	label := map[key]string{}
	var labels []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var name string
		var c claim
		if _, err := fmt.Sscan(l, &name, &c.host, &c.port, &c.user, &c.pass); err != nil {
			return fmt.Errorf("expect line %q: %w", l, err)
		}
		label[key{c.host, c.port}] = name
		labels = append(labels, name)
		if c.user != "-" {
			truth[c] = true
		}
	}
	seconds := map[string]float64{}
	for _, t := range times {
		what, v, _ := strings.Cut(t, "=")
		sec, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("-time %q: %w", t, err)
		}
		seconds[what] = sec
	}
	var mine []claim
	for _, path := range iotcopFiles {
		rep, err := readReport(path)
		if err != nil {
			return err
		}
		for _, f := range rep.Findings {
			switch f.Check {
			case "default-credentials":
				u, _ := f.Evidence["username"].(string)
				p, _ := f.Evidence["password"].(string)
				mine = append(mine, claim{f.Host, f.Port, u, p})
			case "unauthenticated-access":
				// No bench target is open: a claim of open access is false.
				mine = append(mine, claim{f.Host, f.Port, "(no login)", ""})
			}
		}
	}
	var theirs []claim
	for _, path := range hydraFiles {
		if _, p, ok := strings.Cut(path, "="); ok {
			path = p
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var out struct {
			Results []struct {
				Port     int    `json:"port"`
				Host     string `json:"host"`
				Login    string `json:"login"`
				Password string `json:"password"`
			} `json:"results"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return fmt.Errorf("hydra json %s: %w", path, err)
		}
		for _, r := range out.Results {
			theirs = append(theirs, claim{r.Host, r.Port, r.Login, r.Password})
		}
	}

	tallies := map[string]map[string]string{
		"iotcop": scoreClaims(mine, truth, label, labels),
		"hydra":  scoreClaims(theirs, truth, label, labels),
	}
	timeOf := func(tool, l string) (string, float64) {
		k := tool + "/" + l
		if l == "all" {
			k = tool
		}
		s, ok := seconds[k]
		if !ok {
			return "-", 0
		}
		return fmt.Sprintf("%.1fs", s), s
	}
	fmt.Printf("%-12s %9s %18s %9s %18s %13s\n", "target", "iotcop", "found/missed/false", "hydra", "found/missed/false", "hydra/iotcop")
	for _, l := range append(slices.Clone(labels), "all") {
		it, is := timeOf("iotcop", l)
		ht, hs := timeOf("hydra", l)
		ratio := "-"
		if is > 0 && hs > 0 {
			ratio = fmt.Sprintf("%.2fx", hs/is)
		}
		fmt.Printf("%-12s %9s %18s %9s %18s %13s\n", l, it, tallies["iotcop"][l], ht, tallies["hydra"][l], ratio)
	}
	fmt.Println("times are wall clock; a ratio above 1 means iotcop was faster")
	return nil
}

// scoreClaims counts, per target label and in total ("all"), the claims
// that are true, the true pairs not claimed, and the false claims, as
// "found/missed/false".
func scoreClaims(claims []claim, truth map[claim]bool, label map[key]string, labels []string) map[string]string {
	type tally struct{ found, missed, bogus int }
	per := map[string]*tally{"all": {}}
	for _, l := range labels {
		per[l] = &tally{}
	}
	got := map[claim]bool{}
	for _, c := range claims {
		if got[c] {
			continue // reported twice
		}
		got[c] = true
		l, ok := per[label[key{c.host, c.port}]]
		if !ok {
			l = &tally{} // a target outside the bench: counted in "all" only
		}
		for _, t := range []*tally{l, per["all"]} {
			if truth[c] {
				t.found++
			} else {
				t.bogus++
			}
		}
	}
	for c := range truth {
		if !got[c] {
			per[label[key{c.host, c.port}]].missed++
			per["all"].missed++
		}
	}
	out := map[string]string{}
	for l, t := range per {
		out[l] = fmt.Sprintf("%d/%d/%d", t.found, t.missed, t.bogus)
	}
	return out
}
