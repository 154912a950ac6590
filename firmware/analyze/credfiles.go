package analyze

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/unpack"
)

// credFileKind says how a credentials file other than passwd/shadow is
// laid out.
type credFileKind int

const (
	credNone credFileKind = iota
	credHtpasswd
	credMosquitto
	credPPP
	credWPA
	credHostapd
	credUCI
	credSNMP
)

// credFileKindOf classifies a path.
func credFileKindOf(p string) credFileKind {
	dir, base := path.Split(p)
	switch {
	case base == ".htpasswd" || base == "htpasswd" || strings.HasSuffix(base, ".htpasswd"):
		return credHtpasswd
	case strings.Contains(dir, "mosquitto") && (base == "passwd" || base == "pwfile" || base == "password_file" || strings.HasSuffix(base, ".pw") || strings.HasSuffix(base, ".passwd")):
		return credMosquitto
	case base == "chap-secrets" || base == "pap-secrets":
		return credPPP
	case strings.HasPrefix(base, "wpa_supplicant") && strings.HasSuffix(base, ".conf"):
		return credWPA
	case strings.HasPrefix(base, "hostapd") && strings.HasSuffix(base, ".conf"):
		return credHostapd
	case dir == "/etc/config/":
		return credUCI
	case base == "snmpd.conf" || base == "snmpd.local.conf":
		return credSNMP
	}
	return credNone
}

// credEntry is one credential read from such a file.
type credEntry struct {
	user, secret string
	hashed       bool
	line         int
	what         string
}

var (
	reWPAPsk      = regexp.MustCompile(`^\s*psk\s*=\s*"([^"]{8,63})"`)
	reWPASSID     = regexp.MustCompile(`^\s*ssid\s*=\s*"([^"]*)"`)
	reHostapdPass = regexp.MustCompile(`^\s*wpa_passphrase\s*=\s*(\S.{7,62})\s*$`)
	reUCIOption   = regexp.MustCompile(`^\s*option\s+(password|passwd|key|psk|secret|auth_secret|pass|community)\s+['"]?([^'"\s]+)['"]?`)
	reUCISection  = regexp.MustCompile(`^\s*config\s+(\S+)(?:\s+['"]?([^'"\s]+))?`)
	reUCIUser     = regexp.MustCompile(`^\s*option\s+(username|user)\s+['"]?([^'"\s]+)['"]?`)
)

// parseCredFile returns the credentials a file holds.
func parseCredFile(kind credFileKind, data string) []credEntry {
	var out []credEntry
	var ssid, section, user string
	for i, line := range strings.Split(data, "\n") {
		line = strings.TrimRight(line, "\r")
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		switch kind {
		case credHtpasswd, credMosquitto:
			u, h, ok := strings.Cut(t, ":")
			if !ok || u == "" || strings.ContainsAny(u, " \t") {
				continue
			}
			out = append(out, credEntry{user: u, secret: h, hashed: true, line: i + 1, what: map[credFileKind]string{credHtpasswd: "htpasswd", credMosquitto: "mosquitto password file"}[kind]})
		case credPPP:
			f := strings.Fields(t)
			if len(f) >= 3 {
				out = append(out, credEntry{user: strings.Trim(f[0], `"`), secret: strings.Trim(f[2], `"`), line: i + 1, what: "PPP secret"})
			}
		case credWPA:
			if m := reWPASSID.FindStringSubmatch(t); m != nil {
				ssid = m[1]
			}
			if m := reWPAPsk.FindStringSubmatch(t); m != nil {
				out = append(out, credEntry{user: ssid, secret: m[1], line: i + 1, what: "Wi-Fi passphrase (wpa_supplicant)"})
			}
		case credHostapd:
			if m := reHostapdPass.FindStringSubmatch(t); m != nil {
				out = append(out, credEntry{secret: m[1], line: i + 1, what: "Wi-Fi passphrase (hostapd)"})
			}
		case credSNMP:
			f := strings.Fields(t)
			if len(f) < 2 {
				continue
			}
			switch strings.ToLower(f[0]) {
			case "rocommunity", "rwcommunity", "rocommunity6", "rwcommunity6":
				out = append(out, credEntry{user: strings.ToLower(f[0]), secret: f[1], line: i + 1, what: "SNMP community"})
			case "com2sec", "com2sec6":
				if len(f) >= 4 {
					out = append(out, credEntry{user: f[1], secret: f[3], line: i + 1, what: "SNMP community"})
				}
			}
		case credUCI:
			if m := reUCISection.FindStringSubmatch(t); m != nil {
				section, user = m[1], ""
				continue
			}
			if m := reUCIUser.FindStringSubmatch(t); m != nil {
				user = m[2]
				continue
			}
			if m := reUCIOption.FindStringSubmatch(t); m != nil {
				v := m[2]
				if strings.HasPrefix(v, "$p$") { // rpcd: "use the system password"
					continue
				}
				out = append(out, credEntry{user: user, secret: v, hashed: hashScheme(v) != "", line: i + 1,
					what: fmt.Sprintf("UCI %s option %q", section, m[1])})
			}
		}
	}
	return out
}

// mosquittoVerifier checks mosquitto_passwd hashes: "$6$salt$hash" is
// SHA-512 over password+salt, "$7$iterations$salt$hash" is PBKDF2-SHA512.
func mosquittoVerifier(h string) (verifier, int) {
	parts := strings.Split(h, "$")
	switch {
	case len(parts) == 4 && parts[1] == "6":
		salt, err1 := base64.StdEncoding.DecodeString(parts[2])
		want, err2 := base64.StdEncoding.DecodeString(parts[3])
		if err1 != nil || err2 != nil {
			return nil, 0
		}
		return func(pw string) bool {
			s := sha512.Sum512(append([]byte(pw), salt...))
			return string(s[:]) == string(want)
		}, 1 << 20
	case len(parts) == 5 && parts[1] == "7":
		iter, err := strconv.Atoi(parts[2])
		salt, err1 := base64.StdEncoding.DecodeString(parts[3])
		want, err2 := base64.StdEncoding.DecodeString(parts[4])
		if err != nil || err1 != nil || err2 != nil || iter < 1 || iter > 1_000_000 || len(want) == 0 {
			return nil, 0
		}
		return func(pw string) bool {
			k, err := pbkdf2.Key(sha512.New, pw, salt, iter, len(want))
			return err == nil && string(k) == string(want)
		}, max(20, 101*1000/iter*5)
	}
	return nil, 0
}

// htpasswdSHA checks Apache's "{SHA}" base64(SHA-1) entries.
func htpasswdSHA(h string) (verifier, int) {
	want, ok := strings.CutPrefix(h, "{SHA}")
	if !ok {
		return nil, 0
	}
	return func(pw string) bool {
		s := sha1.Sum([]byte(pw))
		return base64.StdEncoding.EncodeToString(s[:]) == want
	}, 1 << 20
}

// credFileFindings reports the credentials of one file.
func (a *Accounts) credFileFindings(f *unpack.File, kind credFileKind) []finding.Finding {
	var out []finding.Finding
	for _, e := range parseCredFile(kind, string(f.Data())) {
		ev := layerEvidence(f, map[string]any{"line": e.line, "kind": e.what})
		if e.user != "" {
			ev["user"] = e.user
		}
		res := finding.Finding{Check: finding.CheckHardCodedCredentials, Provisions: provisionsCredentials,
			Path: f.Path(), Evidence: ev,
			Remediation: "Ship no preset secret: generate it per unit (printed on the label or set at first setup)."}
		who := e.user
		if who == "" {
			who = e.what
		}
		if !e.hashed {
			res.Severity = finding.Critical
			res.Title = fmt.Sprintf("Hard-coded %s for %q", e.what, who)
			ev["password"] = finding.Secret(e.secret)
			out = append(out, res)
			continue
		}
		ev["hash"] = finding.Secret(e.secret)
		var v verifier
		var n int
		switch {
		case kind == credMosquitto:
			v, n = mosquittoVerifier(e.secret)
			ev["hash_scheme"] = "mosquitto"
		case strings.HasPrefix(e.secret, "{SHA}"):
			v, n = htpasswdSHA(e.secret)
			ev["hash_scheme"] = "sha1"
		default:
			v, n = attemptsFor(e.secret, len(a.dict))
			ev["hash_scheme"] = hashScheme(e.secret)
		}
		if v == nil && !strings.HasPrefix(e.secret, "$") && kind == credHtpasswd && e.secret != "" {
			// Plain-text htpasswd entries exist on some embedded servers.
			pw := e.secret
			v, n = func(c string) bool { return c == pw }, 1<<20
		}
		if w, ok := tryWords(v, n, e.user, a.dict); ok {
			res.Severity = finding.Critical
			res.Title = fmt.Sprintf("Hard-coded password for %q cracked (%s)", who, e.what)
			ev["cracked"] = true
			ev["password"] = finding.Secret(w.Password)
			ev["dictionary"] = w.List
		} else {
			res.Severity = finding.High
			res.Title = fmt.Sprintf("%q ships with a preset password hash (%s)", who, e.what)
			ev["cracked"] = false
		}
		out = append(out, res)
	}
	return out
}

// tryWords runs a verifier over the user name, the empty password and up
// to n dictionary words.
func tryWords(v verifier, n int, user string, dict []Word) (Word, bool) {
	if v == nil {
		return Word{}, false
	}
	cands := append([]Word{{user, "user-name"}, {"", "empty"}}, dict[:min(n, len(dict))]...)
	for _, w := range cands {
		if v(w.Password) {
			return w, true
		}
	}
	return Word{}, false
}
