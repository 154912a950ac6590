package ssh

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/iotcop/iotcop/proto"
)

// HostKey is one host key a server proved it holds: it signed our key
// exchange with it.
type HostKey struct {
	// Type is the key format: "ssh-rsa", "ssh-ed25519",
	// "ecdsa-sha2-nistp256", ...
	Type string `json:"type"`
	// Algorithms are the offered host key algorithms that use this key
	// ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa" share one RSA key).
	Algorithms []string `json:"algorithms"`
	// Bits is the RSA modulus size, the ECDSA curve size, or 256 for
	// Ed25519.
	Bits int `json:"bits"`
	// Curve names the ECDSA curve ("P-256"), empty otherwise.
	Curve string `json:"curve,omitempty"`
	// Fingerprint is the SHA-256 fingerprint as ssh-keygen -l prints it
	// ("SHA256:base64"). It is empty when the key was seen but could not
	// be verified (RSA keys under 1024 bits, which Go refuses).
	Fingerprint string `json:"fingerprint,omitempty"`
	// Note says why something is missing.
	Note string `json:"note,omitempty"`
}

// Fingerprint returns the SHA-256 fingerprint of an SSH public key in the
// form ssh-keygen -l and ssh-audit print ("SHA256:" and unpadded base64).
// Two devices showing the same fingerprint share the same host key.
func Fingerprint(key xssh.PublicKey) string { return xssh.FingerprintSHA256(key) }

// errGotKey ends a handshake once the host key is captured.
var errGotKey = errors.New("host key captured")

// weakRSAError is Go's refusal of an RSA key under 1024 bits.
var weakRSAError = regexp.MustCompile(`crypto/rsa: (\d+)-bit keys are insecure`)

// keyFormat maps a host key algorithm to the key format it signs with, so
// that one handshake serves the algorithms sharing a key.
func keyFormat(algo string) string {
	switch algo {
	case xssh.KeyAlgoRSA, xssh.KeyAlgoRSASHA256, xssh.KeyAlgoRSASHA512:
		return xssh.KeyAlgoRSA
	}
	return algo
}

// verifiable reports whether x/crypto can check a server's signature for
// algo. Certificates are left out: device firmware does not use them, and
// the key inside would repeat a plain key's verdict.
func verifiable(algo string) bool {
	if strings.Contains(algo, "-cert-") {
		return false
	}
	sup, ins := xssh.SupportedAlgorithms(), xssh.InsecureAlgorithms()
	return slices.Contains(sup.HostKeys, algo) || slices.Contains(ins.HostKeys, algo)
}

// FetchHostKeys gets the server's host key for every algorithm in offered
// (the server's KEXINIT host key list) that x/crypto can verify: one
// handshake per key format, with HostKeyAlgorithms restricted to it and the
// key captured when the server has signed the exchange, before any
// authentication. Algorithms sharing a key format (the RSA ones) are
// served by one handshake with the first of them the server offered.
//
// A key format whose handshake fails is reported in the error (joined,
// one per format) and left out; the keys fetched are returned regardless.
// Algorithms x/crypto cannot verify (ssh-dss, certificates) are skipped
// silently: the caller sees them in the offer.
func FetchHostKeys(ctx context.Context, ep proto.Endpoint, offered []string) ([]HostKey, error) {
	var order []string
	groups := map[string][]string{}
	for _, a := range offered {
		if !verifiable(a) {
			continue
		}
		f := keyFormat(a)
		if _, ok := groups[f]; !ok {
			order = append(order, f)
		}
		if !slices.Contains(groups[f], a) {
			groups[f] = append(groups[f], a)
		}
	}
	var keys []HostKey
	var errs []error
	for _, f := range order {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("fetching SSH host keys from %s: %w", ep.Addr(), ctx.Err()))
			break
		}
		k, err := fetchHostKey(ctx, ep, groups[f][0])
		if err != nil {
			errs = append(errs, fmt.Errorf("fetching %s host key from %s: %w", groups[f][0], ep.Addr(), err))
			continue
		}
		k.Algorithms = groups[f]
		keys = append(keys, k)
	}
	return keys, errors.Join(errs...)
}

// fetchHostKey runs one handshake offering only algo and returns the key
// the server signed with.
func fetchHostKey(ctx context.Context, ep proto.Endpoint, algo string) (HostKey, error) {
	conn, err := ep.Connect(ctx)
	if err != nil {
		return HostKey{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	// Key exchange on a slow device: modular exponentiation with a 2048-bit
	// group can take a while.
	_ = conn.SetDeadline(time.Now().Add(3 * ep.IOTimeout()))

	var got xssh.PublicKey
	sup, ins := xssh.SupportedAlgorithms(), xssh.InsecureAlgorithms()
	cfg := &xssh.ClientConfig{
		Config: xssh.Config{
			KeyExchanges: slices.Concat(sup.KeyExchanges, ins.KeyExchanges),
			Ciphers:      slices.Concat(sup.Ciphers, ins.Ciphers),
			MACs:         slices.Concat(sup.MACs, ins.MACs),
		},
		User:              "iotcop",
		HostKeyAlgorithms: []string{algo},
		HostKeyCallback: func(_ string, _ net.Addr, key xssh.PublicKey) error {
			got = key
			return errGotKey
		},
		ClientVersion: clientVersion,
	}
	_, _, _, err = xssh.NewClientConn(conn, ep.Addr(), cfg)
	if got != nil {
		return describeKey(got), nil
	}
	if err == nil {
		return HostKey{}, errors.New("handshake ended without a host key")
	}
	if ctx.Err() != nil {
		return HostKey{}, ctx.Err()
	}
	if m := weakRSAError.FindStringSubmatch(err.Error()); m != nil && keyFormat(algo) == xssh.KeyAlgoRSA {
		bits, _ := strconv.Atoi(m[1])
		return HostKey{Type: xssh.KeyAlgoRSA, Bits: bits,
			Note: "Go refuses to verify RSA signatures under 1024 bits, so the key is unverified and has no fingerprint"}, nil
	}
	return HostKey{}, err
}

// describeKey fills in a HostKey's type, size and fingerprint.
func describeKey(key xssh.PublicKey) HostKey {
	k := HostKey{Type: key.Type(), Fingerprint: Fingerprint(key)}
	cpk, ok := key.(xssh.CryptoPublicKey)
	if !ok {
		return k
	}
	switch pub := cpk.CryptoPublicKey().(type) {
	case *rsa.PublicKey:
		k.Bits = pub.N.BitLen()
	case *ecdsa.PublicKey:
		k.Bits = pub.Curve.Params().BitSize
		k.Curve = pub.Curve.Params().Name
	case ed25519.PublicKey:
		k.Bits = 256
	}
	return k
}

// HostKeyFingerprints reads the server's offer and returns the SHA-256
// fingerprints of every host key it proves it holds, in the order offered.
// The shared-secret check compares them across devices.
func HostKeyFingerprints(ctx context.Context, ep proto.Endpoint) ([]string, error) {
	offer, err := ReadServerOffer(ctx, ep)
	if err != nil {
		return nil, err
	}
	if offer.KexInit == nil {
		return nil, fmt.Errorf("SSH host keys of %s: server speaks only SSH-1", ep.Addr())
	}
	keys, err := FetchHostKeys(ctx, ep, offer.KexInit.HostKeyAlgos)
	var fps []string
	for _, k := range keys {
		if k.Fingerprint != "" {
			fps = append(fps, k.Fingerprint)
		}
	}
	return fps, err
}
