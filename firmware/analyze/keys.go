package analyze

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"path"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/unpack"
)

// PrivateKeys finds private keys shipped in the image: PEM (PKCS#1,
// SEC 1, PKCS#8, encrypted), OpenSSH, Dropbear host keys and DER files.
// Only keys that parse count, so a library that merely contains the
// string "PRIVATE KEY" is not a finding.
type PrivateKeys struct {
	// MaxFileSize bounds the files searched (default 16 MiB).
	MaxFileSize int64
}

// NewPrivateKeys returns the analysis.
func NewPrivateKeys() *PrivateKeys { return &PrivateKeys{MaxFileSize: 16 << 20} }

// PerFile implements PerFile: each file is judged on its own.
func (*PrivateKeys) PerFile() bool { return true }

// Name implements Analyzer.
func (*PrivateKeys) Name() string { return "private-keys" }

// Required implements Analyzer: every regular file within the size bound.
func (k *PrivateKeys) Required(_ string, info fs.FileInfo) bool {
	return info.Mode().IsRegular() && info.Size() > 0 && info.Size() <= k.MaxFileSize
}

// A key in the image is a hard-coded critical security parameter (5.4-3)
// stored without protection (5.4-1).
var provisionsKeys = []string{"5.4-1", "5.4-3"}

// keyInfo describes a parsed key.
type keyInfo struct {
	typ         string
	bits        int
	encrypted   bool
	fingerprint string
	format      string
}

var pemBegin = []byte("-----BEGIN ")

// Analyze implements Analyzer.
func (k *PrivateKeys) Analyze(ctx context.Context, _ *unpack.Tree, files []*unpack.File) ([]finding.Finding, error) {
	var out []finding.Finding
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		data := f.Data()
		var keys []keyInfo
		if bytes.Contains(data, pemBegin) {
			keys = append(keys, pemKeys(data)...)
		}
		if ki, ok := dropbearKey(data); ok {
			keys = append(keys, ki)
		}
		if bytes.HasPrefix(data, []byte("PuTTY-User-Key-File-")) {
			if ki, ok := puttyKey(data); ok {
				keys = append(keys, ki)
			}
		}
		if len(keys) == 0 && len(data) < 16<<10 && data[0] == 0x30 {
			if ki, ok := derKey(data); ok {
				keys = append(keys, ki)
			}
		}
		for i, ki := range keys {
			out = append(out, keyFinding(f, ki, i))
		}
	}
	return out, nil
}

func keyFinding(f *unpack.File, ki keyInfo, index int) finding.Finding {
	desc := ki.typ
	if ki.bits > 0 {
		desc = fmt.Sprintf("%s %d-bit", ki.typ, ki.bits)
	}
	ev := layerEvidence(f, map[string]any{"key_type": ki.typ, "format": ki.format, "encrypted": ki.encrypted})
	if ki.bits > 0 {
		ev["key_bits"] = ki.bits
	}
	if ki.fingerprint != "" {
		ev["public_key_fingerprint"] = ki.fingerprint
	}
	if index > 0 {
		ev["index_in_file"] = index
	}
	sev := finding.High
	title := "Private " + desc + " key embedded in the firmware"
	if ki.encrypted {
		sev = finding.Medium
		title = "Encrypted private " + desc + " key embedded in the firmware"
	}
	if base := path.Base(f.Name); strings.Contains(base, "host_key") || strings.HasPrefix(base, "dropbear_") {
		title += " (SSH host key shared by every unit)"
	}
	return finding.Finding{Check: finding.CheckEmbeddedPrivateKey, Provisions: provisionsKeys, Severity: sev,
		Title: title, Path: f.Path(), Evidence: ev,
		Remediation: "Generate keys on each unit at first boot (or provision them per unit in the factory); never ship one key in the image."}
}

// pemKeys parses every PEM private key block in data.
func pemKeys(data []byte) []keyInfo {
	var out []keyInfo
	for len(out) < 64 {
		i := bytes.Index(data, pemBegin)
		if i < 0 {
			break
		}
		data = data[i:]
		block, rest := pem.Decode(data)
		if block == nil {
			data = data[len(pemBegin):]
			continue
		}
		data = rest
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if ki, ok := parsePEMKey(block); ok {
			out = append(out, ki)
		}
	}
	return out
}

func parsePEMKey(b *pem.Block) (keyInfo, bool) {
	ki := keyInfo{format: "PEM " + b.Type}
	//lint:ignore SA1019 detecting legacy encrypted PEM is the point
	if x509.IsEncryptedPEMBlock(b) || b.Type == "ENCRYPTED PRIVATE KEY" {
		if len(b.Bytes) < 64 {
			return ki, false
		}
		ki.encrypted = true
		ki.typ = strings.TrimSuffix(strings.TrimSuffix(b.Type, "PRIVATE KEY"), " ")
		if ki.typ == "" || ki.typ == "ENCRYPTED" {
			ki.typ = "PKCS#8"
		}
		return ki, true
	}
	var key any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "OPENSSH PRIVATE KEY", "DSA PRIVATE KEY":
		key, err = ssh.ParseRawPrivateKey(pem.EncodeToMemory(b))
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			ki.encrypted = true
			ki.typ = "OpenSSH"
			if pm.PublicKey != nil {
				ki.typ = pm.PublicKey.Type()
				ki.fingerprint = ssh.FingerprintSHA256(pm.PublicKey)
			}
			return ki, true
		}
	default:
		return ki, false
	}
	if err != nil {
		return ki, false
	}
	describeKey(&ki, key)
	return ki, ki.typ != ""
}

// describeKey fills type, size and fingerprint from a parsed key.
func describeKey(ki *keyInfo, key any) {
	var pub crypto.PublicKey
	switch k := key.(type) {
	case *rsa.PrivateKey:
		ki.typ, ki.bits, pub = "RSA", k.N.BitLen(), &k.PublicKey
	case *ecdsa.PrivateKey:
		ki.typ, ki.bits, pub = "ECDSA", k.Curve.Params().BitSize, &k.PublicKey
	case ed25519.PrivateKey:
		ki.typ, ki.bits, pub = "Ed25519", 256, k.Public()
	case *ed25519.PrivateKey:
		ki.typ, ki.bits, pub = "Ed25519", 256, k.Public()
	default:
		if s, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			pub = s.Public()
		}
		ki.typ = strings.TrimPrefix(fmt.Sprintf("%T", key), "*")
	}
	if pub != nil {
		if sp, err := ssh.NewPublicKey(pub); err == nil {
			ki.fingerprint = ssh.FingerprintSHA256(sp)
		}
	}
}

// derKey parses a binary DER private key file.
func derKey(data []byte) (keyInfo, bool) {
	ki := keyInfo{format: "DER"}
	if k, err := x509.ParsePKCS8PrivateKey(data); err == nil {
		describeKey(&ki, k)
		return ki, true
	}
	if k, err := x509.ParsePKCS1PrivateKey(data); err == nil {
		describeKey(&ki, k)
		return ki, true
	}
	if k, err := x509.ParseECPrivateKey(data); err == nil {
		describeKey(&ki, k)
		return ki, true
	}
	return ki, false
}

// dropbearKey parses Dropbear's own host key format: SSH wire strings
// and mpints (type, then e, n, d, p, q for RSA; p, q, g, y, x for DSS;
// curve, point, d for ECDSA; the 64-byte key for Ed25519).
func dropbearKey(b []byte) (keyInfo, bool) {
	ki := keyInfo{format: "Dropbear"}
	r := wireReader{b: b}
	typ, ok := r.str()
	if !ok {
		return ki, false
	}
	var fields int
	switch string(typ) {
	case "ssh-rsa":
		ki.typ, fields = "RSA", 5
	case "ssh-dss":
		ki.typ, fields = "DSA", 5
	case "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521":
		ki.typ, fields = "ECDSA", 3
	case "ssh-ed25519":
		ki.typ, fields = "Ed25519", 1
	default:
		return ki, false
	}
	var vals [][]byte
	for range fields {
		v, ok := r.str()
		if !ok {
			return ki, false
		}
		vals = append(vals, v)
	}
	if len(r.b) > 16 { // a key file holds the key and nothing else
		return ki, false
	}
	switch ki.typ {
	case "RSA":
		ki.bits = new(big.Int).SetBytes(vals[1]).BitLen()
		e := new(big.Int).SetBytes(vals[0])
		if e.IsInt64() && e.Int64() > 1 && ki.bits >= 256 {
			if pk, err := ssh.NewPublicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(vals[1]), E: int(e.Int64())}); err == nil {
				ki.fingerprint = ssh.FingerprintSHA256(pk)
			}
		}
		return ki, ki.bits >= 256
	case "DSA":
		ki.bits = new(big.Int).SetBytes(vals[0]).BitLen()
		return ki, ki.bits >= 256
	case "ECDSA":
		ki.bits = map[string]int{"nistp256": 256, "nistp384": 384, "nistp521": 521}[string(vals[0])]
		return ki, ki.bits > 0
	default:
		ki.bits = 256
		return ki, len(vals[0]) == 64
	}
}

// puttyKey reads the header of a PuTTY .ppk file: the algorithm, the
// encryption, and that private lines are present.
func puttyKey(b []byte) (keyInfo, bool) {
	ki := keyInfo{format: "PuTTY"}
	var algo, enc string
	var private bool
	for i, line := range strings.Split(string(b[:min(len(b), 64<<10)]), "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ": ")
		if !ok {
			continue
		}
		switch {
		case i == 0 && strings.HasPrefix(k, "PuTTY-User-Key-File-"):
			algo = v
		case k == "Encryption":
			enc = v
		case k == "Private-Lines":
			private = v != "0" && v != ""
		}
	}
	if algo == "" || !private {
		return ki, false
	}
	ki.typ = algo
	ki.encrypted = enc != "none"
	return ki, true
}

type wireReader struct{ b []byte }

func (w *wireReader) str() ([]byte, bool) {
	if len(w.b) < 4 {
		return nil, false
	}
	n := binary.BigEndian.Uint32(w.b)
	if n > 16<<10 || int(n) > len(w.b)-4 {
		return nil, false
	}
	v := w.b[4 : 4+n]
	w.b = w.b[4+n:]
	return v, true
}
