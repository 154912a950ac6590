package discover

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestVendorKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"D-Link Corporation", "dlink"},
		{"D-Link Systems, Inc.", "dlink"},
		{"DLink", "dlink"},
		{"TP-LINK TECHNOLOGIES CO., LTD.", "tplink"},
		{"TP-Link", "tplink"},
		{"Hangzhou Hikvision Digital Technology Co., Ltd.", "hikvision"},
		{"HIKVISION", "hikvision"},
		{"NETGEAR, Inc.", "netgear"},
		{"Netgear", "netgear"},
		{"ASUSTeK Computer Inc.", "asus"},
		{"Cisco-Linksys, LLC", "linksys"},
		{"Cisco Systems, Inc.", "cisco"},
		{"AXIS", "axis"},
		{"Ubiquiti Networks", "ubiquiti"},
		{"ZyXEL Communications Corp.", "zyxel"},
		{"ZTE Corporation", "zte"},
		{"MikroTik", "mikrotik"},
		{"Samsung Electronics", "samsung"},
		{"ACTi Corporation", "acti"},
		{"http://www.dlink.com", "dlink"},
		{"https://www.tp-link.com/en/", "tplink"},
		{"www.netgear.com", "netgear"},
		// Not vendors the dictionaries know, or words that merely contain one.
		{"Canonical Ltd.", ""},
		{"Praxis Labs", ""},
		{"Interactive Devices", ""},
		{"AVM Berlin", ""},
		{"MiniUPnP", ""},
		{"", ""},
		{"vendor", ""},
	}
	for _, tt := range tests {
		if got := VendorKey(tt.in); got != tt.want {
			t.Errorf("VendorKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDeviceVendorOrder(t *testing.T) {
	tests := []struct {
		name string
		d    Device
		want string
	}{
		{"manufacturer first", Device{Manufacturer: "NETGEAR", ManufacturerURL: "http://www.dlink.com"}, "netgear"},
		{"then its URL", Device{Manufacturer: "Acme", ManufacturerURL: "http://www.dlink.com"}, "dlink"},
		{"then a TXT maker", Device{Services: []Service{{TXT: []string{"path=/", "usb_MFG=Canon"}}}, Model: "ZTE box"}, "canon"},
		{"then the model", Device{Model: "ZTE F660"}, "zte"},
		{"then the friendly name", Device{FriendlyName: "[TV] Samsung 6 Series"}, "samsung"},
		{"nothing known", Device{Manufacturer: "Acme", Services: []Service{{TXT: []string{"mf"}}}}, ""},
	}
	for _, tt := range tests {
		if got := tt.d.Vendor(); got != tt.want {
			t.Errorf("%s: Vendor() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestVendorKeysMatchDictionaries keeps the alias table and the credential
// dictionary in step: every key VendorKey returns is a vendor of the
// dictionary, and every vendor of the dictionary has aliases.
func TestVendorKeysMatchDictionaries(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "creds", "data", "routersploit-vendor-protocol.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var dict []string
	for _, r := range rows[1:] { // header: category,vendor,...
		if !slices.Contains(dict, r[1]) {
			dict = append(dict, r[1])
		}
	}
	var keys []string
	for _, v := range vendorAliases {
		keys = append(keys, v.key)
		if !slices.Contains(dict, v.key) {
			t.Errorf("vendor key %q is not in the dictionary", v.key)
		}
		for _, a := range v.aliases {
			if got := VendorKey(a); got != v.key {
				t.Errorf("alias %q maps to %q, want %q", a, got, v.key)
			}
		}
	}
	for _, v := range dict {
		if !slices.Contains(keys, v) {
			t.Errorf("dictionary vendor %q has no aliases in vendorAliases", v)
		}
	}
}

func FuzzVendorKey(f *testing.F) {
	f.Add("D-Link Corporation")
	f.Add("http://[::1]:80/")
	f.Add("TP-LINK")
	f.Fuzz(func(t *testing.T, s string) {
		k := VendorKey(s)
		if k == "" {
			return
		}
		for _, v := range vendorAliases {
			if v.key == k {
				return
			}
		}
		t.Fatalf("VendorKey(%q) = %q, not a known key", s, k)
	})
}
