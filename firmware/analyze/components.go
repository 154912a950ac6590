package analyze

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/unpack"
)

// Component is one piece of software found in the image, for an SBOM.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Type is a CycloneDX component type: "application", "library",
	// "operating-system" or "firmware".
	Type string `json:"type"`
	PURL string `json:"purl,omitempty"`
	CPE  string `json:"cpe,omitempty"`
	// Source says how it was found: "opkg", "dpkg", "apk" (package
	// databases) or "version-string" (read from a binary).
	Source string `json:"source"`
	// Path is where it was found (the package database or the binary).
	Path string `json:"path"`
}

// Components inventories software from package databases (opkg, dpkg,
// apk) and from the version strings of the binaries that matter on
// devices. It produces no findings; List returns the inventory.
type Components struct {
	mu   sync.Mutex
	seen map[string]int // name@version -> index in list
	list []Component
}

// NewComponents returns an empty inventory.
func NewComponents() *Components { return &Components{seen: map[string]int{}} }

// Name implements Analyzer.
func (*Components) Name() string { return "components" }

// PerFile implements PerFile.
func (*Components) PerFile() bool { return true }

// Required implements Analyzer.
func (*Components) Required(_ string, info fs.FileInfo) bool {
	return info.Mode().IsRegular() && info.Size() >= 16 && info.Size() <= 64<<20
}

// versionRule reads one product's version out of binary content.
type versionRule struct {
	name, typ, cpeVendor, cpeProduct string
	marker                           string
	re                               *regexp.Regexp
	part                             string // "a" application, "o" operating system
}

var versionRules = []versionRule{
	{"busybox", "application", "busybox", "busybox", "BusyBox v", regexp.MustCompile(`BusyBox v(\d+\.\d+(?:\.\d+)?)`), "a"},
	{"openssl", "library", "openssl", "openssl", "OpenSSL ", regexp.MustCompile(`OpenSSL (\d+\.\d+\.\d+[a-z]{0,2})[ -]+(?:\d|[A-Z][a-z]{2} )`), "a"},
	{"dropbear", "application", "dropbear_ssh_project", "dropbear_ssh", "dropbear_", regexp.MustCompile(`dropbear_(\d{4}\.\d+)`), "a"},
	{"openssh", "application", "openbsd", "openssh", "OpenSSH_", regexp.MustCompile(`OpenSSH_(\d+\.\d+(?:p\d+)?)`), "a"},
	{"lighttpd", "application", "lighttpd", "lighttpd", "lighttpd/", regexp.MustCompile(`lighttpd/(\d+\.\d+\.\d+)`), "a"},
	{"dnsmasq", "application", "thekelleys", "dnsmasq", "dnsmasq-", regexp.MustCompile(`dnsmasq-(\d+\.\d+(?:\.\d+)?)`), "a"},
	{"hostapd", "application", "w1.fi", "hostapd", "hostapd v", regexp.MustCompile(`hostapd v(\d+\.\d+(?:\.\d+)?)`), "a"},
	{"wpa_supplicant", "application", "w1.fi", "wpa_supplicant", "wpa_supplicant v", regexp.MustCompile(`wpa_supplicant v(\d+\.\d+(?:\.\d+)?)`), "a"},
	{"curl", "library", "haxx", "libcurl", "libcurl/", regexp.MustCompile(`libcurl/(\d+\.\d+\.\d+)`), "a"},
	{"uclibc-ng", "library", "uclibc-ng_project", "uclibc-ng", "uClibc-ng ", regexp.MustCompile(`uClibc-ng (\d+\.\d+\.\d+)`), "a"},
	{"uclibc", "library", "uclibc", "uclibc", "uClibc-0", regexp.MustCompile(`uClibc-(0\.\d+\.\d+(?:\.\d+)?)`), "a"},
	{"glibc", "library", "gnu", "glibc", "GNU C Library", regexp.MustCompile(`GNU C Library [^\n]*?version (\d+\.\d+)`), "a"},
	{"linux", "operating-system", "linux", "linux_kernel", "Linux version ", regexp.MustCompile(`Linux version (\d+\.\d+(?:\.\d+)?)[^\s]* \(`), "o"},
	{"u-boot", "firmware", "denx", "u-boot", "U-Boot 20", regexp.MustCompile(`U-Boot (20\d\d\.\d\d(?:\.\d+)?)`), "a"},
	{"vxworks", "operating-system", "windriver", "vxworks", "VxWorks", regexp.MustCompile(`VxWorks ?(\d+\.\d+(?:\.\d+)?)`), "o"},
}

func (c *Components) add(comp Component) {
	key := comp.Name + "@" + comp.Version
	c.mu.Lock()
	defer c.mu.Unlock()
	// Files are visited in parallel: keep the smallest path so the
	// inventory does not depend on the order.
	if i, ok := c.seen[key]; ok {
		if comp.Path < c.list[i].Path {
			c.list[i] = comp
		}
		return
	}
	c.seen[key] = len(c.list)
	c.list = append(c.list, comp)
}

// List returns the inventory sorted by name and version.
func (c *Components) List() []Component {
	c.mu.Lock()
	out := append([]Component(nil), c.list...)
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}

func cpe(part, vendor, product, version string) string {
	esc := strings.NewReplacer(":", `\:`, "*", `\*`)
	return fmt.Sprintf("cpe:2.3:%s:%s:%s:%s:*:*:*:*:*:*:*", part, vendor, product, esc.Replace(version))
}

// Analyze implements Analyzer.
func (c *Components) Analyze(ctx context.Context, _ *unpack.Tree, files []*unpack.File) ([]finding.Finding, error) {
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch {
		case f.Name == "/usr/lib/opkg/status" || strings.HasSuffix(f.Name, "/opkg/status"):
			c.packageDB(f, "opkg")
		case strings.HasSuffix(f.Name, "/dpkg/status"):
			c.packageDB(f, "dpkg")
		case strings.HasSuffix(f.Name, "/apk/db/installed"):
			c.apkDB(f)
		default:
			c.versionStrings(f)
		}
	}
	return nil, nil
}

// packageDB reads Debian-style control stanzas (opkg and dpkg status).
func (c *Components) packageDB(f *unpack.File, kind string) {
	for _, stanza := range strings.Split(string(f.Data()), "\n\n") {
		var name, version, status string
		for _, line := range strings.Split(stanza, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch k {
			case "Package":
				name = strings.TrimSpace(v)
			case "Version":
				version = strings.TrimSpace(v)
			case "Status":
				status = strings.TrimSpace(v)
			}
		}
		if name == "" || version == "" || status != "" && !strings.Contains(status, "installed") || strings.Contains(status, "not-installed") {
			continue
		}
		purl := "pkg:deb/" + name + "@" + version
		if kind == "opkg" {
			purl = "pkg:generic/openwrt/" + name + "@" + version
		}
		c.add(Component{Name: name, Version: version, Type: "library", PURL: purl, Source: kind, Path: f.Path()})
	}
}

// apkDB reads Alpine's installed database ("P:" name, "V:" version).
func (c *Components) apkDB(f *unpack.File) {
	var name, version string
	flush := func() {
		if name != "" && version != "" {
			c.add(Component{Name: name, Version: version, Type: "library", PURL: "pkg:apk/alpine/" + name + "@" + version, Source: "apk", Path: f.Path()})
		}
		name, version = "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(f.Data()))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "P:"):
			name = line[2:]
		case strings.HasPrefix(line, "V:"):
			version = line[2:]
		}
	}
	flush()
}

// versionStrings finds known products' version strings in a binary.
func (c *Components) versionStrings(f *unpack.File) {
	data := f.Data()
	for _, r := range versionRules {
		if r.re == nil {
			continue
		}
		i := bytes.Index(data, []byte(r.marker))
		if i < 0 {
			continue
		}
		// Look at a window around the first markers only: cheap on big files.
		for n := 0; i >= 0 && n < 8; n++ {
			win := data[i:min(len(data), i+200)]
			if m := r.re.FindSubmatch(win); m != nil {
				v := string(m[1])
				c.add(Component{Name: r.name, Version: v, Type: r.typ, PURL: "pkg:generic/" + r.name + "@" + v,
					CPE: cpe(r.part, r.cpeVendor, r.cpeProduct, v), Source: "version-string", Path: f.Path()})
				break
			}
			j := bytes.Index(data[i+1:], []byte(r.marker))
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	if path.Base(f.Name) == "uhttpd" && bytes.HasPrefix(data, []byte("\x7fELF")) {
		c.add(Component{Name: "uhttpd", Version: "", Type: "application", PURL: "pkg:generic/openwrt/uhttpd", Source: "file-name", Path: f.Path()})
	}
}
