// Command compare scores benchmark runs: it reads the virtual lab's
// manifest (what really runs where) and the outputs of iotcop, nmap and
// hydra on the same targets, and prints how many services each tool named
// correctly and how many credentials each found, missed or invented.
// It is used by bench/scan.sh and bench/creds.sh.
package main

import (
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
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

// credsCmd compares found credentials with the truth.
// -expect lines: "proto host port user pass".
func credsCmd(args []string) error {
	fs := flag.NewFlagSet("creds", flag.ContinueOnError)
	expectPath := fs.String("expect", "", "file of 'protocol host port user pass' lines (the valid pairs)")
	iot := fs.String("iotcop", "", "iotcop JSON report (run with --show-secrets)")
	hydraFiles := multiFlag{}
	fs.Var(&hydraFiles, "hydra", "protocol=hydra -b json output file (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*expectPath)
	if err != nil {
		return err
	}
	type cred struct {
		proto, host string
		port        int
		user, pass  string
	}
	truth := map[cred]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var c cred
		if _, err := fmt.Sscan(l, &c.proto, &c.host, &c.port, &c.user, &c.pass); err != nil {
			return fmt.Errorf("expect line %q: %w", l, err)
		}
		truth[c] = true
	}
	tally := func(label string, found []cred) {
		var ok, bad int
		perProto := map[string]string{}
		for _, c := range found {
			if truth[c] {
				ok++
				perProto[c.proto] += "found "
			} else {
				bad++
				perProto[c.proto] += "FALSE "
			}
		}
		var parts []string
		for _, p := range []string{"telnet", "ssh", "ftp", "http"} {
			parts = append(parts, fmt.Sprintf("%s:%s", p, strings.TrimSpace(orDash(perProto[p]))))
		}
		fmt.Printf("%-8s found %d/%d  missed %d  false %d   %s\n", label, ok, len(truth), len(truth)-ok, bad, strings.Join(parts, " "))
	}
	rep, err := readReport(*iot)
	if err != nil {
		return err
	}
	var mine []cred
	for _, f := range rep.Findings {
		if f.Check != "default-credentials" {
			continue
		}
		u, _ := f.Evidence["username"].(string)
		p, _ := f.Evidence["password"].(string)
		proto := ""
		for _, d := range rep.Devices {
			for _, s := range d.Services {
				if d.Address == f.Host && s.Port == f.Port {
					proto = normalise(s.Protocol)
				}
			}
		}
		mine = append(mine, cred{proto, f.Host, f.Port, u, p})
	}
	tally("iotcop", mine)
	var theirs []cred
	for _, hf := range hydraFiles {
		proto, path, _ := strings.Cut(hf, "=")
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
			theirs = append(theirs, cred{proto, r.Host, r.Port, r.Login, r.Password})
		}
	}
	tally("hydra", theirs)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
