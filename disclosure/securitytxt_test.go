package disclosure

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func codes(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Code)
	}
	return out
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		want      []string // problem codes, in order
		contact   []string
		expires   string
		languages []string
	}{
		{
			name: "complete",
			in: "# our policy\nContact: mailto:security@vendor.example\nContact: https://vendor.example/report\n" +
				"Expires: 2030-01-01T00:00:00Z\nEncryption: https://vendor.example/pgp.asc\nAcknowledgments: https://vendor.example/thanks\n" +
				"Preferred-Languages: en, de\nCanonical: https://vendor.example/.well-known/security.txt\nPolicy: https://vendor.example/policy\n" +
				"Hiring: https://vendor.example/jobs\nCSAF: https://vendor.example/provider-metadata.json\n",
			contact:   []string{"mailto:security@vendor.example", "https://vendor.example/report"},
			expires:   "2030-01-01T00:00:00Z",
			languages: []string{"en", "de"},
		},
		{name: "CRLF and case-insensitive names", in: "contact: tel:+44-20-7946-0000\r\nEXPIRES: 2030-01-01t00:00:00z\r\n",
			contact: []string{"tel:+44-20-7946-0000"}, expires: "2030-01-01T00:00:00Z"},
		{name: "no contact", in: "Expires: 2030-01-01T00:00:00Z\n", want: []string{ProblemNoContact}, expires: "2030-01-01T00:00:00Z"},
		{name: "no expires", in: "Contact: mailto:a@b.example\n", want: []string{ProblemNoExpires}, contact: []string{"mailto:a@b.example"}},
		{name: "two expires", in: "Contact: mailto:a@b.example\nExpires: 2030-01-01T00:00:00Z\nExpires: 2031-01-01T00:00:00Z\n",
			want: []string{ProblemMultipleExpires}, contact: []string{"mailto:a@b.example"}},
		{name: "date only expires", in: "Contact: mailto:a@b.example\nExpires: 2030-01-01\n", want: []string{ProblemBadExpires}, contact: []string{"mailto:a@b.example"}},
		{name: "e-mail without mailto", in: "Contact: security@vendor.example\nExpires: 2030-01-01T00:00:00Z\n",
			want: []string{ProblemBadContact}, contact: []string{"security@vendor.example"}, expires: "2030-01-01T00:00:00Z"},
		{name: "http contact and policy", in: "Contact: http://vendor.example/report\nExpires: 2030-01-01T00:00:00Z\nPolicy: http://vendor.example/p\n",
			want: []string{ProblemBadContact, ProblemBadURI}, contact: []string{"http://vendor.example/report"}, expires: "2030-01-01T00:00:00Z"},
		{name: "garbage lines", in: "<html>\nContact: mailto:a@b.example\nExpires: 2030-01-01T00:00:00Z\nnot a field\n",
			want: []string{ProblemSyntax, ProblemSyntax}, contact: []string{"mailto:a@b.example"}, expires: "2030-01-01T00:00:00Z"},
		{name: "bad language and repeated languages", in: "Contact: mailto:a@b.example\nExpires: 2030-01-01T00:00:00Z\nPreferred-Languages: en, english please\nPreferred-Languages: fr\n",
			want: []string{ProblemBadLanguage, ProblemMultipleLanguages}, contact: []string{"mailto:a@b.example"}, expires: "2030-01-01T00:00:00Z", languages: []string{"en"}},
		{name: "not utf-8", in: "Contact: mailto:a@b.example\nExpires: 2030-01-01T00:00:00Z\n# caf\xe9\n",
			want: []string{ProblemNotUTF8}, contact: []string{"mailto:a@b.example"}, expires: "2030-01-01T00:00:00Z"},
		{name: "broken signed frame", in: "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nContact: mailto:a@b.example\nExpires: 2030-01-01T00:00:00Z\n",
			want: []string{ProblemBadSignedMessage}, contact: []string{"mailto:a@b.example"}, expires: "2030-01-01T00:00:00Z"},
		{name: "empty", in: "", want: []string{ProblemNoContact, ProblemNoExpires}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, probs := Parse([]byte(tc.in))
			if got := codes(probs); !slices.Equal(got, tc.want) {
				t.Fatalf("problems %v, want %v (%v)", got, tc.want, probs)
			}
			if !slices.Equal(f.Contact, tc.contact) {
				t.Errorf("contact %q, want %q", f.Contact, tc.contact)
			}
			got := ""
			if !f.Expires.IsZero() {
				got = f.Expires.UTC().Format(time.RFC3339)
			}
			if got != tc.expires {
				t.Errorf("expires %q, want %q", got, tc.expires)
			}
			if tc.languages != nil && !slices.Equal(f.PreferredLanguages, tc.languages) {
				t.Errorf("languages %q, want %q", f.PreferredLanguages, tc.languages)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()
	in := "Contact: mailto:a@b.example\nExpires: 2030-01-01T00:00:00Z\n" + strings.Repeat("# padding\n", MaxFileSize/10+10)
	_, probs := Parse([]byte(in))
	if got := codes(probs); !slices.Equal(got, []string{ProblemTooLarge}) {
		t.Fatalf("problems %v", got)
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		from []string
		want []string
	}{
		{name: "fine", in: "Expires: 2026-12-01T00:00:00Z\n"},
		{name: "expired", in: "Expires: 2026-05-31T00:00:00Z\n", want: []string{ProblemExpired}},
		{name: "too far ahead", in: "Expires: 2027-06-02T00:00:00Z\n", want: []string{ProblemExpiresTooFar}},
		{name: "canonical matches with default port and case", in: "Expires: 2026-12-01T00:00:00Z\nCanonical: HTTPS://Vendor.Example:443/.well-known/security.txt\n",
			from: []string{"https://vendor.example/.well-known/security.txt"}},
		{name: "canonical matches the final URL after a redirect", in: "Expires: 2026-12-01T00:00:00Z\nCanonical: https://www.vendor.example/.well-known/security.txt\n",
			from: []string{"https://vendor.example/.well-known/security.txt", "https://www.vendor.example/.well-known/security.txt"}},
		{name: "canonical mismatch", in: "Expires: 2026-12-01T00:00:00Z\nCanonical: https://other.example/.well-known/security.txt\n",
			from: []string{"https://vendor.example/.well-known/security.txt"}, want: []string{ProblemCanonicalMismatch}},
		{name: "canonical on another port", in: "Expires: 2026-12-01T00:00:00Z\nCanonical: https://vendor.example:8443/.well-known/security.txt\n",
			from: []string{"https://vendor.example/.well-known/security.txt"}, want: []string{ProblemCanonicalMismatch}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := Parse([]byte(tc.in))
			if got := codes(f.Judge(now, tc.from...)); !slices.Equal(got, tc.want) {
				t.Fatalf("problems %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Contact: mailto:security@vendor.example\nExpires: 2030-01-01T00:00:00Z\n",
		"contact: https://vendor.example/report\r\nexpires: 2030-01-01t00:00:00z\r\nPreferred-Languages: en, pt-BR\r\n",
		"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nContact: mailto:a@b.example\n-----BEGIN PGP SIGNATURE-----\n\nwsBcBAEBCAAQ\n-----END PGP SIGNATURE-----\n",
		"-----BEGIN PGP SIGNED MESSAGE-----\n",
		"Canonical: https://[::1]:8443/.well-known/security.txt\nExpires: 2030-01-01T00:00:00+02:00\n",
		"Contact: \xff\xfe\nExpires:\n:\n#\n\n",
		"Preferred-Languages: ,,,\nPreferred-Languages: en\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, probs := Parse(data)
		if file == nil {
			t.Fatal("nil file")
		}
		for _, p := range probs {
			if p.Code == "" || p.Detail == "" {
				t.Fatalf("empty problem %+v", p)
			}
		}
		_ = file.Judge(time.Unix(1700000000, 0), "https://vendor.example/.well-known/security.txt")
	})
}
