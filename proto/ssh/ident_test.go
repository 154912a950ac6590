package ssh

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseIdentification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Identification
		product string
		version string
		vendor  string
		wantErr bool
	}{
		{in: "SSH-2.0-dropbear_2022.83\r\n",
			want:    Identification{ProtoVersion: "2.0", Software: "dropbear_2022.83", Line: "SSH-2.0-dropbear_2022.83"},
			product: "Dropbear sshd", version: "2022.83"},
		{in: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
			want:    Identification{ProtoVersion: "2.0", Software: "OpenSSH_9.2p1", Comments: "Debian-2+deb12u3", Line: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"},
			product: "OpenSSH", version: "9.2p1"},
		{in: "SSH-1.5-1.2.27\n",
			want:    Identification{ProtoVersion: "1.5", Software: "1.2.27", Line: "SSH-1.5-1.2.27"},
			product: "1.2.27"},
		{in: "SSH-1.99-Cisco-1.25\r\n",
			want:    Identification{ProtoVersion: "1.99", Software: "Cisco-1.25", Line: "SSH-1.99-Cisco-1.25"},
			product: "Cisco SSH", version: "1.25", vendor: "cisco"},
		{in: "SSH-2.0-ROSSSH\r\n",
			want:    Identification{ProtoVersion: "2.0", Software: "ROSSSH", Line: "SSH-2.0-ROSSSH"},
			product: "MikroTik RouterOS sshd", vendor: "mikrotik"},
		{in: "SSH-2.0-dropbear\r\n",
			want:    Identification{ProtoVersion: "2.0", Software: "dropbear", Line: "SSH-2.0-dropbear"},
			product: "Dropbear sshd"},
		{in: "SSH-2.0-Sun_SSH_1.1\n",
			want:    Identification{ProtoVersion: "2.0", Software: "Sun_SSH_1.1", Line: "SSH-2.0-Sun_SSH_1.1"},
			product: "Sun SSH", version: "1.1"},
		{in: "SSH-2.0-libssh-0.6.0\r\n",
			want:    Identification{ProtoVersion: "2.0", Software: "libssh-0.6.0", Line: "SSH-2.0-libssh-0.6.0"},
			product: "libssh", version: "0.6.0"},
		{in: "Welcome\r\nplease wait\r\nSSH-2.0-OpenSSH_7.4\r\n",
			want:    Identification{ProtoVersion: "2.0", Software: "OpenSSH_7.4", Line: "SSH-2.0-OpenSSH_7.4"},
			product: "OpenSSH", version: "7.4"},
		{in: "SSH-2.0-dropbear_2019.78", // cut short, no line end
			want:    Identification{ProtoVersion: "2.0", Software: "dropbear_2019.78", Line: "SSH-2.0-dropbear_2019.78"},
			product: "Dropbear sshd", version: "2019.78"},
		{in: "SSH-2.0-\r\n", wantErr: true},
		{in: "SSH-x.y-foo\r\n", wantErr: true},
		{in: "SSH-2-foo\r\n", wantErr: true},
		{in: "220 FTP ready\r\n", wantErr: true},
		{in: "HTTP/1.1 200 OK\r\n\r\nSSH-2.0-in-a-body", wantErr: false,
			want:    Identification{ProtoVersion: "2.0", Software: "in-a-body", Line: "SSH-2.0-in-a-body"},
			product: "in", version: ""},
		{in: strings.Repeat("x\n", 40) + "SSH-2.0-late\r\n", wantErr: true},
		{in: "SSH-2.0-" + strings.Repeat("a", 2000) + "\r\n", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseIdentification([]byte(tt.in))
		if tt.wantErr {
			if !errors.Is(err, ErrNoIdentification) {
				t.Errorf("ParseIdentification(%q) = %+v, %v; want ErrNoIdentification", tt.in, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseIdentification(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseIdentification(%q) (-want +got):\n%s", tt.in, diff)
		}
		p, v, vendor := got.Describe()
		if p != tt.product || v != tt.version || vendor != tt.vendor {
			t.Errorf("Describe(%q) = %q %q %q; want %q %q %q", got.Software, p, v, vendor, tt.product, tt.version, tt.vendor)
		}
	}
}

// FuzzParseIdentification checks the parser never panics and that what it
// returns is well-formed.
func FuzzParseIdentification(f *testing.F) {
	for _, s := range []string{
		"SSH-2.0-dropbear_2022.83\r\n",
		"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
		"SSH-1.5-1.2.27\n",
		"SSH-1.99-Cisco-1.25\r\n",
		"banner\r\nSSH-2.0-x y z\r\n",
		"SSH-2.0-\xff\xfe\r\n",
		"SSH--\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if start := idLineStart(b); start >= 0 && !strings.HasPrefix(string(b[start:]), "SSH-") {
			t.Fatalf("idLineStart(%q) = %d, not at an SSH- line", b, start)
		}
		id, err := ParseIdentification(b)
		if err != nil {
			return
		}
		if !validProtoVersion(id.ProtoVersion) || id.Software == "" || !printable(id.Software) {
			t.Fatalf("malformed result %+v from %q", id, b)
		}
		if !strings.HasPrefix(id.Line, "SSH-") || len(id.Line) > maxIDLineLen {
			t.Fatalf("bad line %q", id.Line)
		}
		for _, c := range []byte(id.Line + id.Comments) {
			if c < ' ' || c >= 0x7f {
				t.Fatalf("unprintable byte %#x kept", c)
			}
		}
		_, _, _ = id.Describe()
	})
}
