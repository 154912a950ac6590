package ssh

import (
	"bytes"
	"errors"
	"strings"
)

// Identification is an SSH server's identification string (RFC 4253
// section 4.2): "SSH-protoversion-softwareversion SP comments".
type Identification struct {
	ProtoVersion string // "2.0", "1.99", "1.5"
	Software     string // "dropbear_2022.83", "OpenSSH_9.2p1"
	Comments     string // "Debian-2+deb12u3", may be empty
	Line         string // the whole line, without CR LF
}

// SSH1 reports whether the server speaks protocol 1 (versions 1.x,
// including 1.99 which offers both).
func (id Identification) SSH1() bool { return strings.HasPrefix(id.ProtoVersion, "1.") }

// Bounds for parsing untrusted identification data.
const (
	maxIDLines   = 32   // lines a server may send before its identification
	maxIDLineLen = 1024 // RFC says 255; be lenient but bounded
)

// ErrNoIdentification is returned by ParseIdentification when the bytes
// hold no well-formed SSH identification line.
var ErrNoIdentification = errors.New("no SSH identification string")

// ParseIdentification finds the identification line in what a server sent
// first. Lines before it, which RFC 4253 allows, are skipped (at most 32).
// The last line may lack its line end (a banner cut short by a read).
func ParseIdentification(b []byte) (Identification, error) {
	for i := 0; i < maxIDLines && len(b) > 0; i++ {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		b = rest
		line = bytes.TrimSuffix(line, []byte("\r"))
		if !bytes.HasPrefix(line, []byte("SSH-")) {
			continue
		}
		if len(line) > maxIDLineLen {
			return Identification{}, ErrNoIdentification
		}
		return parseIDLine(string(line))
	}
	return Identification{}, ErrNoIdentification
}

func parseIDLine(line string) (Identification, error) {
	rest := strings.TrimPrefix(line, "SSH-")
	protoVer, rest, ok := strings.Cut(rest, "-")
	if !ok || !validProtoVersion(protoVer) {
		return Identification{}, ErrNoIdentification
	}
	software, comments, _ := strings.Cut(rest, " ")
	if software == "" || !printable(software) {
		return Identification{}, ErrNoIdentification
	}
	return Identification{
		ProtoVersion: protoVer,
		Software:     software,
		Comments:     strings.TrimSpace(strings.Map(printableOrSpace, comments)),
		Line:         strings.Map(printableOrSpace, line),
	}, nil
}

// validProtoVersion accepts "2.0", "1.99", "1.5": digits, one dot, digits.
func validProtoVersion(v string) bool {
	major, minor, ok := strings.Cut(v, ".")
	return ok && len(v) <= 8 && digits(major) && digits(minor)
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func printableOrSpace(r rune) rune {
	if r < ' ' || r >= 0x7f {
		return -1
	}
	return r
}

// knownSoftware maps the name part of the software version (before "_" or
// "-", case-insensitive) to a product name and the device maker it implies.
var knownSoftware = map[string]struct{ product, vendor string }{
	"dropbear":  {"Dropbear sshd", ""},
	"openssh":   {"OpenSSH", ""},
	"libssh":    {"libssh", ""},
	"rosssh":    {"MikroTik RouterOS sshd", "mikrotik"},
	"cisco":     {"Cisco SSH", "cisco"},
	"huawei":    {"Huawei SSH", "huawei"},
	"zte":       {"ZTE SSH", "zte"},
	"zyxel":     {"Zyxel SSH", "zyxel"},
	"romsshell": {"Allegro RomSShell", ""},
	"comware":   {"Comware SSH", "h3c"},
	"lancom":    {"LANCOM SSH", "lancom"},
	"netscreen": {"NetScreen SSH", "juniper"},
	"mpssh":     {"HP Integrated Lights-Out SSH", "hp"},
	"go":        {"Go x/crypto/ssh", ""},
	"paramiko":  {"Paramiko", ""},
	"asyncssh":  {"AsyncSSH", ""},
	"sun":       {"Sun SSH", ""},
	"wolfssh":   {"wolfSSH", ""},
}

// Describe names the product, its version and the device maker (if the
// software implies one) from the software version:
// "dropbear_2022.83" gives ("Dropbear sshd", "2022.83", "").
func (id Identification) Describe() (product, version, vendor string) {
	sw := id.Software
	name, ver := sw, ""
	if i := strings.IndexAny(sw, "_-"); i >= 0 {
		name, ver = sw[:i], sw[i+1:]
	}
	if ver != "" && (ver[0] < '0' || ver[0] > '9') {
		// "Sun_SSH_1.1": the version follows the last separator.
		if j := strings.LastIndexAny(sw, "_-"); j > len(name) && j+1 < len(sw) && sw[j+1] >= '0' && sw[j+1] <= '9' {
			ver = sw[j+1:]
		} else {
			ver = ""
		}
	}
	if k, ok := knownSoftware[strings.ToLower(name)]; ok {
		return k.product, ver, k.vendor
	}
	return name, ver, ""
}
