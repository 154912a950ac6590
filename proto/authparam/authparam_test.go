package authparam

import "testing"

func TestBasic(t *testing.T) {
	tests := []struct {
		in    string
		realm string
		ok    bool
	}{
		{`Basic realm="NETGEAR R7000"`, "NETGEAR R7000", true},
		{`basic realm=cam`, "cam", true},
		{`Basic charset="UTF-8", realm="a \"quoted\" realm"`, `a "quoted" realm`, true},
		{`Basic`, "", true},
		{`Basicx realm="no"`, "", false},
		{`Digest realm="x", nonce="y"`, "", false},
		{``, "", false},
	}
	for _, tc := range tests {
		realm, ok := Basic(tc.in)
		if realm != tc.realm || ok != tc.ok {
			t.Errorf("Basic(%q) = %q, %v; want %q, %v", tc.in, realm, ok, tc.realm, tc.ok)
		}
	}
}

func FuzzValue(f *testing.F) {
	for _, s := range []string{`realm="a\"b", nonce=x`, `=`, `"`, `a="`, `realm=x,realm=y`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v := Value(s, "realm"); len(v) > len(s) {
			t.Fatalf("value %q longer than input %q", v, s)
		}
	})
}
