package ssh

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the weak test server signs as a legacy device would
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"io"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	xssh "golang.org/x/crypto/ssh"

	"github.com/iotcop/iotcop/internal/daemontest"
)

// newServerConfig is an in-process SSH server configuration holding
// signers as host keys; every login is refused.
func newServerConfig(signers ...xssh.Signer) *xssh.ServerConfig {
	cfg := &xssh.ServerConfig{
		PasswordCallback: func(xssh.ConnMetadata, []byte) (*xssh.Permissions, error) {
			return nil, errors.New("denied")
		},
	}
	for _, s := range signers {
		cfg.AddHostKey(s)
	}
	return cfg
}

func signerFor(t *testing.T, key crypto.Signer) xssh.Signer {
	t.Helper()
	s, err := xssh.NewSignerFromSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// weakRSASigner signs with an RSA key shorter than Go's crypto/rsa accepts
// (it does textbook PKCS #1 v1.5 itself), as old device firmware would.
type weakRSASigner struct {
	pub  *rsa.PublicKey
	d    *big.Int
	size int // modulus bytes
}

// newWeakRSASigner makes a bits-bit RSA key from two random primes.
func newWeakRSASigner(t *testing.T, bits int) *weakRSASigner {
	t.Helper()
	e := big.NewInt(65537)
	one := big.NewInt(1)
	for {
		p, err := rand.Prime(rand.Reader, bits/2)
		if err != nil {
			t.Fatal(err)
		}
		q, err := rand.Prime(rand.Reader, bits/2)
		if err != nil {
			t.Fatal(err)
		}
		n := new(big.Int).Mul(p, q)
		if p.Cmp(q) == 0 || n.BitLen() != bits {
			continue
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(e, phi)
		if d == nil {
			continue
		}
		return &weakRSASigner{pub: &rsa.PublicKey{N: n, E: 65537}, d: d, size: (bits + 7) / 8}
	}
}

func (s *weakRSASigner) PublicKey() xssh.PublicKey {
	k, err := xssh.NewPublicKey(s.pub)
	if err != nil {
		panic(err)
	}
	return k
}

func (s *weakRSASigner) Sign(r io.Reader, data []byte) (*xssh.Signature, error) {
	return s.SignWithAlgorithm(r, data, xssh.KeyAlgoRSA)
}

// DER DigestInfo prefixes (RFC 8017 section 9.2, note 1).
var digestInfo = map[string][]byte{
	xssh.KeyAlgoRSA:       {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	xssh.KeyAlgoRSASHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	xssh.KeyAlgoRSASHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

func (s *weakRSASigner) SignWithAlgorithm(_ io.Reader, data []byte, algo string) (*xssh.Signature, error) {
	if algo == "" {
		algo = xssh.KeyAlgoRSA
	}
	var h []byte
	switch algo {
	case xssh.KeyAlgoRSA:
		sum := sha1.Sum(data) //nolint:gosec // legacy signature on purpose
		h = sum[:]
	case xssh.KeyAlgoRSASHA256:
		sum := sha256.Sum256(data)
		h = sum[:]
	case xssh.KeyAlgoRSASHA512:
		sum := sha512.Sum512(data)
		h = sum[:]
	default:
		return nil, errors.New("unsupported algorithm " + algo)
	}
	t := append(slices.Clone(digestInfo[algo]), h...)
	em := make([]byte, s.size)
	em[1] = 1
	for i := 2; i < s.size-len(t)-1; i++ {
		em[i] = 0xff
	}
	copy(em[s.size-len(t):], t)
	sig := new(big.Int).Exp(new(big.Int).SetBytes(em), s.d, s.pub.N).FillBytes(make([]byte, s.size))
	return &xssh.Signature{Format: algo, Blob: sig}, nil
}

func TestFetchHostKeys(t *testing.T) {
	t.Parallel()
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ed, ec, rs := signerFor(t, edPriv), signerFor(t, ecPriv), signerFor(t, rsaPriv)
	weak := newWeakRSASigner(t, 768)
	weakSigner, err := xssh.NewSignerWithAlgorithms(weak, []string{xssh.KeyAlgoRSA})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		signers []xssh.Signer
		want    []HostKey
	}{
		{
			name:    "ed25519, ECDSA P-384 and RSA 2048",
			signers: []xssh.Signer{ed, ec, rs},
			want: []HostKey{
				{Type: "ssh-ed25519", Algorithms: []string{"ssh-ed25519"}, Bits: 256, Fingerprint: Fingerprint(ed.PublicKey())},
				{Type: "ecdsa-sha2-nistp384", Algorithms: []string{"ecdsa-sha2-nistp384"}, Bits: 384, Curve: "P-384", Fingerprint: Fingerprint(ec.PublicKey())},
				{Type: "ssh-rsa", Algorithms: []string{"rsa-sha2-256", "rsa-sha2-512", "ssh-rsa"}, Bits: 2048, Fingerprint: Fingerprint(rs.PublicKey())},
			},
		},
		{
			name:    "RSA 768 with SHA-1 signatures only",
			signers: []xssh.Signer{weakSigner},
			want: []HostKey{{Type: "ssh-rsa", Algorithms: []string{"ssh-rsa"}, Bits: 768,
				Note: "Go refuses to verify RSA signatures under 1024 bits, so the key is unverified and has no fingerprint"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := newServerConfig(tt.signers...)
			var authAttempts atomic.Int32
			cfg.PasswordCallback = func(xssh.ConnMetadata, []byte) (*xssh.Permissions, error) {
				authAttempts.Add(1)
				return nil, errors.New("denied")
			}
			ep, conns := listen(t, func(c net.Conn) { _, _, _, _ = xssh.NewServerConn(c, cfg) })
			ctx := daemontest.Context(t)
			offer, err := ReadServerOffer(ctx, ep)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := FetchHostKeys(ctx, ep, offer.KexInit.HostKeyAlgos)
			if err != nil {
				t.Fatal(err)
			}
			sortKeys := cmp.Transformer("sort", func(in []HostKey) []HostKey {
				out := slices.Clone(in)
				slices.SortFunc(out, func(a, b HostKey) int { return strings.Compare(a.Type, b.Type) })
				return out
			})
			sortAlgos := cmp.Transformer("sortAlgos", func(in []string) []string {
				out := slices.Clone(in)
				slices.Sort(out)
				return out
			})
			if diff := cmp.Diff(tt.want, keys, sortKeys, sortAlgos); diff != "" {
				t.Errorf("host keys (-want +got):\n%s", diff)
			}
			// One connection for the offer, one per key format.
			if got, want := int(conns.Load()), 1+len(tt.want); got != want {
				t.Errorf("%d connections, want %d", got, want)
			}
			if n := authAttempts.Load(); n != 0 {
				t.Errorf("%d authentication attempts, want none", n)
			}
		})
	}
}

// TestFetchHostKeysErrors: algorithms x/crypto cannot verify are skipped;
// a server that hangs up is an error naming the algorithm.
func TestFetchHostKeysErrors(t *testing.T) {
	t.Parallel()
	ep, conns := listen(t, func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-x\r\n")) })
	keys, err := FetchHostKeys(daemontest.Context(t), ep, []string{"ssh-dss", "ssh-ed25519-cert-v01@openssh.com", "x509v3-sign-rsa", "ssh-ed25519"})
	if len(keys) != 0 || err == nil || !strings.Contains(err.Error(), "fetching ssh-ed25519 host key from "+ep.Addr()) {
		t.Errorf("FetchHostKeys = %v, %v; want no keys and an ssh-ed25519 error", keys, err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (unverifiable algorithms skipped)", n)
	}
}

func TestHostKeyFingerprints(t *testing.T) {
	t.Parallel()
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := signerFor(t, edPriv)
	cfg := newServerConfig(ed)
	ep, _ := listen(t, func(c net.Conn) { _, _, _, _ = xssh.NewServerConn(c, cfg) })
	fps, err := HostKeyFingerprints(daemontest.Context(t), ep)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{Fingerprint(ed.PublicKey())}; !slices.Equal(fps, want) {
		t.Errorf("fingerprints = %v, want %v", fps, want)
	}
	if !strings.HasPrefix(fps[0], "SHA256:") || strings.HasSuffix(fps[0], "=") {
		t.Errorf("fingerprint %q is not in ssh-keygen's form", fps[0])
	}
}
