package analyze

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"testing"
)

func FuzzDropbearKey(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x40" + string(make([]byte, 64))))
	f.Add([]byte("\x00\x00\x00\x07ssh-rsa\x00\x00\x00\x01\x03\x00\x00\x00\x02\x01\x01"))
	f.Add([]byte("\x00\x00\x00\x13ecdsa-sha2-nistp256\x00\x00\x00\x08nistp256"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dropbearKey(b)
		derKey(b)
		pemKeys(b)
	})
}

func FuzzBootAndAccountFiles(f *testing.F) {
	f.Add("root:$1$abc$def:0:0:99999:7:::\nguest::1:1::/:/bin/sh\n", "ttyS0::respawn:-/bin/sh\n", "telnetd -l /bin/sh -u a:b\necho 'x:y' | chpasswd\n")
	f.Add("root:x:0:0:root:/root:/bin/sh\n", "::askfirst:/bin/sh", "tftp dgram udp wait root /usr/sbin/tftpd tftpd")
	f.Fuzz(func(t *testing.T, shadow, inittab, script string) {
		tree := treeOf(t, map[string]string{"etc/shadow": shadow, "etc/inittab": inittab, "etc/init.d/rcS": script, "etc/inetd.conf": script})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if _, err := Run(ctx, tree, []Analyzer{NewAccounts(), NewBootServices()}); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzCompareVersions(f *testing.F) {
	f.Add("1.36.1", "1:1.35.0-4~rc1")
	f.Add("1.1.1w", "2022.83")
	f.Fuzz(func(t *testing.T, a, b string) {
		if x, y := compareVersions(a, b), compareVersions(b, a); x != -y {
			t.Fatalf("compareVersions(%q,%q)=%d but reversed %d", a, b, x, y)
		}
		inRange(a, []map[string]string{{"introduced": "0"}, {"fixed": b}})
	})
}

// reCleartextURL is the pattern cleartextURLs implements by hand.
var reCleartextURL = regexp.MustCompile(`\b(?:http|ftp|tftp)://[A-Za-z0-9.\-]+(?::\d+)?/[A-Za-z0-9._~%!$&'()*+,;=:@/\-]*`)

// checkCleartextURLs fails when cleartextURLs and the pattern disagree.
func checkCleartextURLs(t *testing.T, data []byte, limit int) {
	t.Helper()
	got, want := cleartextURLs(data, limit), reCleartextURL.FindAll(data, limit)
	if len(got) != len(want) {
		t.Fatalf("cleartextURLs(%q) = %q, pattern finds %q", data, got, want)
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) || &got[i][0] != &want[i][0] {
			t.Fatalf("cleartextURLs(%q) = %q, pattern finds %q", data, got, want)
		}
	}
}

func FuzzCleartextURLs(f *testing.F) {
	for _, s := range cleartextURLCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkCleartextURLs(t, b, 200)
		checkCleartextURLs(t, b, 2)
	})
}

// FuzzSecretRules holds the windowed and per-line rule runners equal to
// running each rule's regexp over the whole content.
func FuzzSecretRules(f *testing.F) {
	for _, s := range secretRuleCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSecretRules(t, b)
	})
}

func checkSecretRules(t *testing.T, data []byte) {
	t.Helper()
	for _, r := range secretRules {
		if !r.anchored && !r.lineLocal {
			continue
		}
		for _, limit := range []int{1, 20} {
			want := r.re.FindAllSubmatchIndex(data, limit)
			var got [][]int
			if r.anchored {
				got = anchoredMatches(r, data, limit)
			} else {
				got = lineMatches(r, data, limit)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("rule %s on %q (limit %d): got %v, regexp finds %v", r.id, data, limit, got, want)
			}
		}
	}
}
