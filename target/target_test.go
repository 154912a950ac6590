package target

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func addrs(t *testing.T, s Set) []string {
	t.Helper()
	var out []string
	for a := range s.All() {
		out = append(out, a.String())
	}
	return out
}

func TestParse(t *testing.T) {
	res := fakeResolver{
		"cam.lan":    {netip.MustParseAddr("192.168.1.20")},
		"public.com": {netip.MustParseAddr("8.8.8.8")},
	}
	tests := []struct {
		spec    string
		want    []string
		wantErr string
	}{
		{spec: "127.0.0.1", want: []string{"127.0.0.1"}},
		{spec: "::1", want: []string{"::1"}},
		{spec: "[::1]", want: []string{"::1"}},
		{spec: "127.0.0.1-3", want: []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}},
		{spec: "10.0.0.254-10.0.1.1", want: []string{"10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"}},
		{spec: "192.168.7.0/30", want: []string{"192.168.7.0", "192.168.7.1", "192.168.7.2", "192.168.7.3"}},
		{spec: "192.168.7.9/31", want: []string{"192.168.7.8", "192.168.7.9"}},
		{spec: "fd00::1-fd00::2", want: []string{"fd00::1", "fd00::2"}},
		{spec: "fd00::/127", want: []string{"fd00::", "fd00::1"}},
		{spec: "cam.lan", want: []string{"192.168.1.20"}},
		{spec: "8.8.8.8", wantErr: "outside private"},
		{spec: "public.com", wantErr: "outside private"},
		{spec: "192.168.255.250-192.169.0.1", wantErr: "192.169.0.1"},
		{spec: "0.0.0.0/0", wantErr: "outside private"},
		{spec: "2001:db8::1", wantErr: "outside private"},
		{spec: "127.0.0.5-2", wantErr: "before its start"},
		{spec: "127.0.0.1-300", wantErr: "not an octet"},
		{spec: "10.0.0.0/33", wantErr: "bad CIDR"},
		{spec: "no such!", wantErr: "not an address"},
		{spec: "missing.lan", wantErr: "resolve"},
		{spec: "", wantErr: "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			p := Parser{Resolver: res}
			s, err := p.Build(context.Background(), []string{tc.spec}, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := addrs(t, s); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v want %v", got, tc.want)
			}
		})
	}
}

func TestAllowPublic(t *testing.T) {
	p := Parser{AllowPublic: true}
	s, err := p.Build(context.Background(), []string{"8.8.8.8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := addrs(t, s); !slices.Equal(got, []string{"8.8.8.8"}) {
		t.Fatal(got)
	}
	if _, err := (Parser{}).Parse(context.Background(), "8.8.8.8"); !errors.Is(err, ErrOutOfScope) {
		t.Fatalf("want ErrOutOfScope, got %v", err)
	}
}

func TestExclude(t *testing.T) {
	s, err := Parser{}.Build(context.Background(), []string{"10.1.1.0/29"}, []string{"10.1.1.2,10.1.1.4-5", "8.8.8.8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.1.0", "10.1.1.1", "10.1.1.3", "10.1.1.6", "10.1.1.7"}
	if got := addrs(t, s); !slices.Equal(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func TestSlash16Streams(t *testing.T) {
	s, err := Parser{}.Build(context.Background(), []string{"10.9.0.0/16"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Size() != 65536 {
		t.Fatalf("size %d", s.Size())
	}
	n := 0
	var last netip.Addr
	for a := range s.All() {
		n++
		last = a
	}
	if n != 65536 || last.String() != "10.9.255.255" {
		t.Fatalf("n=%d last=%s", n, last)
	}
	allocs := testing.AllocsPerRun(3, func() {
		for range s.All() {
		}
	})
	if allocs > 10 {
		t.Fatalf("streaming a /16 allocated %v times; want constant", allocs)
	}
}

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "targets.txt")
	os.WriteFile(p, []byte("# lab\n127.0.0.1, 127.0.0.2\n\n10.0.0.0/30 # office\n"), 0o644)
	got, err := ReadFile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1", "127.0.0.2", "10.0.0.0/30"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "nope"), nil); err == nil {
		t.Fatal("want error for missing file")
	}
}

func TestRangeInScope(t *testing.T) {
	tests := []struct {
		spec string
		want bool
	}{
		{"10.0.0.1-10.0.0.5", true},
		{"127.77.0.250-127.78.0.2", true},
		{"10.255.255.250-11.0.0.2", false}, // runs out of 10/8 into public space
		{"8.8.8.8", false},
		{"::1", true},
	}
	for _, tc := range tests {
		rs, err := Parser{AllowPublic: true}.Parse(context.Background(), tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := rs[0].InScope(); got != tc.want {
			t.Errorf("%s: InScope = %v, want %v", tc.spec, got, tc.want)
		}
	}
}
