package discover

import (
	"net/url"
	"strings"
)

// vendorAliases maps the vendor keys of the credential dictionaries
// (creds/data/routersploit-vendor-protocol.csv, column "vendor") to the
// ways makers spell themselves in UPnP descriptions, TXT records and web
// addresses. Order matters where names overlap: the first match wins
// ("Cisco-Linksys" is Linksys).
var vendorAliases = []struct {
	key     string
	aliases []string
}{
	{"linksys", []string{"linksys"}},
	{"2wire", []string{"2wire"}},
	{"3com", []string{"3com"}},
	{"acti", []string{"acti"}},
	{"american_dynamics", []string{"american dynamics", "americandynamics"}},
	{"arecont", []string{"arecont"}},
	{"asmax", []string{"asmax"}},
	{"asus", []string{"asus", "asustek"}},
	{"avigilon", []string{"avigilon"}},
	{"avtech", []string{"avtech"}},
	{"axis", []string{"axis communications", "axis"}},
	{"basler", []string{"basler"}},
	{"belkin", []string{"belkin"}},
	{"bhu", []string{"bhu"}},
	{"billion", []string{"billion"}},
	{"brickcom", []string{"brickcom"}},
	{"canon", []string{"canon"}},
	{"cisco", []string{"cisco"}},
	{"comtrend", []string{"comtrend"}},
	{"dlink", []string{"d-link", "dlink"}},
	{"fortinet", []string{"fortinet", "fortigate"}},
	{"geovision", []string{"geovision"}},
	{"grandstream", []string{"grandstream"}},
	{"hikvision", []string{"hikvision", "hik vision"}},
	{"honeywell", []string{"honeywell"}},
	{"huawei", []string{"huawei"}},
	{"ipfire", []string{"ipfire"}},
	{"iqinvision", []string{"iqinvision", "iq invision"}},
	{"juniper", []string{"juniper"}},
	{"jvc", []string{"jvc"}},
	{"mikrotik", []string{"mikrotik"}},
	{"mobotix", []string{"mobotix"}},
	{"movistar", []string{"movistar"}},
	{"netcore", []string{"netcore"}},
	{"netgear", []string{"netgear"}},
	{"netsys", []string{"netsys"}},
	{"pfsense", []string{"pfsense"}},
	{"samsung", []string{"samsung"}},
	{"sentry360", []string{"sentry360"}},
	{"siemens", []string{"siemens"}},
	{"speco", []string{"speco"}},
	{"stardot", []string{"stardot"}},
	{"technicolor", []string{"technicolor"}},
	{"thomson", []string{"thomson"}},
	{"tplink", []string{"tp-link", "tplink"}},
	{"ubiquiti", []string{"ubiquiti", "ubnt"}},
	{"vacron", []string{"vacron"}},
	{"videoiq", []string{"videoiq"}},
	{"zte", []string{"zte"}},
	{"zyxel", []string{"zyxel"}},
}

// VendorKey maps a maker's name as a device states it ("D-Link
// Corporation", "TP-LINK TECHNOLOGIES CO., LTD.", "Hangzhou Hikvision
// Digital Technology Co., Ltd.") or its web address
// ("http://www.netgear.com/") to the lower-case vendor key the credential
// dictionaries use ("dlink", "tplink", "hikvision", "netgear"), or "" when
// it names no vendor they know. Names match by whole words, so "Canonical"
// is not Canon; an alias of six letters or more also matches the start of
// a word ("Hikvisiondigital").
func VendorKey(manufacturer string) string {
	if u, err := url.Parse(strings.TrimSpace(manufacturer)); err == nil && u.Host != "" {
		manufacturer = u.Hostname()
	}
	words := vendorWords(manufacturer)
	if len(words) == 0 {
		return ""
	}
	for _, v := range vendorAliases {
		for _, a := range v.aliases {
			if matchWords(words, vendorWords(a)) {
				return v.key
			}
		}
	}
	return ""
}

// vendorWords splits s into lower-case runs of letters and digits.
func vendorWords(s string) []string {
	if len(s) > maxText {
		s = s[:maxText]
	}
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	})
}

// matchWords reports whether alias appears in words as a run of whole
// words, or joined into one word ("d link" in "dlink"), or, for aliases of
// six or more letters, at the start of a word.
func matchWords(words, alias []string) bool {
	if len(alias) == 0 {
		return false
	}
	joined := strings.Join(alias, "")
	for i, w := range words {
		if w == joined || (len(joined) >= 6 && strings.HasPrefix(w, joined)) {
			return true
		}
		if i+len(alias) <= len(words) {
			run := true
			for j, a := range alias {
				if words[i+j] != a {
					run = false
					break
				}
			}
			if run {
				return true
			}
		}
	}
	return false
}

// txtVendorKeys are TXT keys in which devices name their maker (printers'
// usb_MFG, various IoT stacks' manufacturer/vendor/mf).
var txtVendorKeys = []string{"manufacturer", "vendor", "mf", "mfg", "usb_mfg"}

// Vendor returns the credential dictionaries' vendor key for d (see
// VendorKey): from its UPnP manufacturer, else its manufacturer URL, else a
// maker named in its DNS-SD TXT records, else its UPnP model and friendly
// names; "" when none names a known vendor.
func (d Device) Vendor() string {
	candidates := []string{d.Manufacturer, d.ManufacturerURL}
	for _, s := range d.Services {
		for _, kv := range s.TXT {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			for _, want := range txtVendorKeys {
				if strings.EqualFold(k, want) {
					candidates = append(candidates, v)
				}
			}
		}
	}
	candidates = append(candidates, d.Model, d.FriendlyName)
	for _, c := range candidates {
		if k := VendorKey(c); k != "" {
			return k
		}
	}
	return ""
}
