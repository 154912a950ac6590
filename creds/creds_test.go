package creds

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotcop/iotcop/proto"
)

func TestBuiltinOrder(t *testing.T) {
	d, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	got := d.For("telnet", "")
	if len(got) < 500 {
		t.Fatalf("telnet list has only %d pairs", len(got))
	}
	// Mirai by weight: root/xc3511 (10), root/vizxv (9), root/admin (8).
	for i, want := range []string{"root:xc3511", "root:vizxv", "root:admin", "admin:admin"} {
		if got[i].String() != want {
			t.Fatalf("telnet[%d] = %s, want %s", i, got[i], want)
		}
	}
	seen := map[proto.Credential]bool{}
	for _, c := range got {
		if seen[c] {
			t.Fatalf("duplicate %s", c)
		}
		seen[c] = true
	}
	// A vendor's own telnet defaults come before Mirai.
	zte := d.For("telnet", "zte")
	if zte[0].String() == "root:xc3511" {
		t.Fatalf("vendor pairs not first: %v", zte[:3])
	}
	snmp := d.For("snmp", "")
	if snmp[0].Password != "public" || snmp[1].Password != "private" || snmp[0].Username != "" {
		t.Fatalf("snmp order %v", snmp[:2])
	}
	rtsp := d.For("rtsp", "")
	found := false
	for _, c := range rtsp {
		if c.Username == "admin" && c.Password == "12345" {
			found = true
		}
	}
	if !found {
		t.Fatal("rtsp list lacks admin:12345")
	}
}

func TestLoadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "list.txt")
	os.WriteFile(p, []byte("# mine\nroot:a:b\n\nadmin:\ncommunity\n"), 0o644)
	d, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got := d.For("telnet", "hikvision")
	want := []string{"root:a:b", "admin:", ":community"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("got[%d]=%s want %s", i, got[i], want[i])
		}
	}
	if s := d.For("snmp", ""); s[0].Username != "" || s[0].Password != "a:b" {
		t.Fatalf("snmp from custom list: %v", s)
	}
	empty := filepath.Join(t.TempDir(), "empty.txt")
	os.WriteFile(empty, []byte("# nothing\n"), 0o644)
	if _, err := LoadFile(empty); err == nil || !strings.Contains(err.Error(), "no user:pass") {
		t.Fatalf("empty list: %v", err)
	}
}

func TestPopularOrderForWeb(t *testing.T) {
	d, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	got := d.For("http", "")
	if got[0].String() != "admin:admin" {
		t.Fatalf("http starts with %s, want admin:admin (the most widely shipped pair)", got[0])
	}
	pos := map[string]int{}
	for i, c := range got {
		pos[c.String()] = i
	}
	if pos["admin:password"] > 10 || pos["admin:1234"] > 12 {
		t.Fatalf("common web defaults too late: admin:password at %d, admin:1234 at %d", pos["admin:password"], pos["admin:1234"])
	}
}
