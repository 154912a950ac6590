// Package creds holds the built-in default-credential dictionaries
// (embedded from shared/data/creds, see data/SOURCES.md), orders them for a
// given protocol and vendor, and keeps the per-service attempt budget that
// makes credential checks lockout-safe.
package creds

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/iotcop/iotcop/proto"
)

//go:embed data/*.csv data/*.txt
var dataFS embed.FS

// vendorPair is a default credential a vendor ships for a protocol.
type vendorPair struct {
	vendor, protocol string
	cred             proto.Credential
}

// Dictionary is a parsed set of credential lists.
type Dictionary struct {
	mirai       []proto.Credential // ordered by Mirai's weight
	vendor      []vendorPair       // routersploit vendor × protocol
	cheat       []vendorPair       // DefaultCreds cheat sheet (protocol unknown)
	generic     []proto.Credential // routersploit defaults
	communities []string
	rtspUsers   []string
	rtspPass    []string
	// custom replaces every list when set (--creds FILE).
	custom []proto.Credential
}

// Builtin parses the embedded dictionaries.
func Builtin() (*Dictionary, error) {
	d := &Dictionary{}
	var err error
	if d.mirai, err = loadMirai(); err != nil {
		return nil, err
	}
	rows, err := readCSV("data/routersploit-vendor-protocol.csv")
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r) < 7 {
			continue
		}
		d.vendor = append(d.vendor, vendorPair{vendor: strings.ToLower(r[1]), protocol: strings.ToLower(r[3]), cred: proto.Credential{Username: r[5], Password: r[6]}})
	}
	if rows, err = readCSV("data/defaultcreds-cheat-sheet.csv"); err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r) < 3 {
			continue
		}
		d.cheat = append(d.cheat, vendorPair{vendor: strings.ToLower(r[0]), cred: proto.Credential{Username: blank(r[1]), Password: blank(r[2])}})
	}
	if rows, err = readCSV("data/routersploit-defaults.csv"); err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r) >= 2 {
			d.generic = append(d.generic, proto.Credential{Username: r[0], Password: r[1]})
		}
	}
	if d.communities, err = readLines("data/snmp-communities-routersploit.txt", false); err != nil {
		return nil, err
	}
	if d.rtspUsers, err = readLines("data/rtsp-cameradar-usernames.txt", true); err != nil {
		return nil, err
	}
	if d.rtspPass, err = readLines("data/rtsp-cameradar-passwords.txt", true); err != nil {
		return nil, err
	}
	return d, nil
}

func blank(s string) string {
	if s == "<blank>" {
		return ""
	}
	return s
}

func readCSV(name string) ([][]string, error) {
	b, err := dataFS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read embedded %s: %w", name, err)
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse embedded %s: %w", name, err)
	}
	if len(rows) > 0 {
		rows = rows[1:] // header
	}
	return rows, nil
}

func readLines(name string, keepEmpty bool) ([]string, error) {
	b, err := dataFS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read embedded %s: %w", name, err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" && !keepEmpty {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

func loadMirai() ([]proto.Credential, error) {
	rows, err := readCSV("data/mirai-weighted.csv")
	if err != nil {
		return nil, err
	}
	type wc struct {
		c    proto.Credential
		w    int
		line int
	}
	var all []wc
	for _, r := range rows {
		if len(r) < 4 {
			continue
		}
		w, _ := strconv.Atoi(r[2])
		line, _ := strconv.Atoi(r[3])
		all = append(all, wc{proto.Credential{Username: r[0], Password: r[1]}, w, line})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].w != all[j].w {
			return all[i].w > all[j].w
		}
		return all[i].line < all[j].line
	})
	out := make([]proto.Credential, 0, len(all))
	for _, a := range all {
		out = append(out, a.c)
	}
	return out, nil
}

// LoadFile reads a user:pass-per-line file (split on the first ':'; '#'
// comments and blank lines skipped; a line without ':' is a password or
// SNMP community with an empty user). The result replaces the built-in
// lists for every protocol.
func LoadFile(path string) (*Dictionary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read credential list: %w", err)
	}
	defer f.Close()
	return parseList(f, path)
}

func parseList(r io.Reader, name string) (*Dictionary, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	var list []proto.Credential
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		u, p, ok := strings.Cut(l, ":")
		if !ok {
			u, p = "", l
		}
		list = append(list, proto.Credential{Username: u, Password: p})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("credential list %s line %d: %w", name, line+1, err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("credential list %s holds no user:pass line", name)
	}
	return &Dictionary{custom: list}, nil
}

// Passwords returns every distinct password (and SNMP community) of the
// lists, for refusing them where a password is chosen: a service that
// checks for default passwords must not accept one for itself.
func (d *Dictionary) Passwords() map[string]bool {
	out := map[string]bool{}
	for _, c := range d.mirai {
		out[c.Password] = true
	}
	for _, c := range d.generic {
		out[c.Password] = true
	}
	for _, c := range d.custom {
		out[c.Password] = true
	}
	for _, v := range d.vendor {
		out[v.cred.Password] = true
	}
	for _, v := range d.cheat {
		out[v.cred.Password] = true
	}
	for _, c := range d.communities {
		out[c] = true
	}
	for _, p := range d.rtspPass {
		out[p] = true
	}
	return out
}

// ErrNoList means a protocol has no credential list.
var ErrNoList = errors.New("no credential list for protocol")

// For returns the credentials to try against a service speaking protocol on
// a device whose fingerprint named vendor (lower case, may be empty), in
// order: the vendor's own defaults for this protocol, the vendor's defaults
// for any protocol, Mirai's table by weight, then the wider lists. No pair
// appears twice.
func (d *Dictionary) For(protocol, vendor string) []proto.Credential {
	seen := map[proto.Credential]bool{}
	var out []proto.Credential
	add := func(c proto.Credential) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	if d.custom != nil {
		for _, c := range d.custom {
			if protocol == "snmp" {
				// A community is one string: use the password field.
				c = proto.Credential{Password: c.Password}
			}
			add(c)
		}
		return out
	}
	vendor = strings.ToLower(vendor)
	if protocol == "snmp" {
		for _, c := range d.communities {
			add(proto.Credential{Password: c})
		}
		return out
	}
	base := strings.TrimSuffix(protocol, "s") // https → http, mqtts → mqtt, rtsps → rtsp
	if vendor != "" {
		for _, v := range d.vendor {
			if v.vendor == vendor && (v.protocol == protocol || v.protocol == base) {
				add(v.cred)
			}
		}
		for _, v := range d.vendor {
			if v.vendor == vendor {
				add(v.cred)
			}
		}
		for _, v := range d.cheat {
			if strings.Contains(v.vendor, vendor) {
				add(v.cred)
			}
		}
	}
	// Mirai spread over telnet (and SSH on some variants): there its
	// weights are the best order. Elsewhere pairs go by how many sources
	// and vendors ship them.
	if base == "telnet" || base == "ssh" {
		for _, c := range d.mirai {
			add(c)
		}
	}
	popular := d.popular(base)
	if base == "rtsp" {
		// Camera streams: the widely shipped pairs that camera-specific
		// lists also hold come first.
		users, passwords := set(d.rtspUsers), set(d.rtspPass)
		for _, c := range popular {
			if users[c.Username] && passwords[c.Password] && c.Username != "" {
				add(c)
			}
		}
	}
	for _, c := range popular {
		add(c)
	}
	if base == "rtsp" {
		for _, p := range d.rtspPass {
			for _, u := range d.rtspUsers {
				if u != "" {
					add(proto.Credential{Username: u, Password: p})
				}
			}
		}
	}
	for _, v := range d.vendor {
		if v.protocol == base {
			add(v.cred)
		}
	}
	for _, c := range d.generic {
		add(c)
	}
	return out
}

// popular orders every known pair by how widely it is shipped: the number
// of vendors listing it in the cheat sheet, plus routersploit modules for
// this protocol (weighted, they are protocol-specific), plus Mirai's weight.
func (d *Dictionary) popular(protocol string) []proto.Credential {
	score := map[proto.Credential]int{}
	var order []proto.Credential
	bump := func(c proto.Credential, n int) {
		if _, ok := score[c]; !ok {
			order = append(order, c)
		}
		score[c] += n
	}
	for i, c := range d.mirai {
		bump(c, max(10-i/4, 1))
	}
	for _, v := range d.cheat {
		bump(v.cred, 1)
	}
	for _, v := range d.vendor {
		if v.protocol == protocol {
			bump(v.cred, 3)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return score[order[i]] > score[order[j]] })
	return order
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// Budget limits credential attempts per service.
type Budget struct {
	// PerService is the most attempts against one service (beyond the
	// one random wrong credential used to learn the failure signature).
	PerService int
}

// DefaultBudget is small: the highest-weighted defaults only, few enough
// that common lockout policies (5-10 failures) are rarely reached.
func DefaultBudget() Budget { return Budget{PerService: 8} }

// AggressiveBudget is used with --aggressive.
func AggressiveBudget() Budget { return Budget{PerService: 1000} }
