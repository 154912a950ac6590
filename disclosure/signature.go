package disclosure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// maxKeySize caps a fetched OpenPGP key.
const maxKeySize = 64 << 10

// verify checks the OpenPGP cleartext signature of f, retrieved from
// fileURL, against the keys its Encryption field points to. Keys are
// fetched only from the host the file came from: another host is a site
// the user did not ask iotcop to contact, so the file is then reported as
// "signed, not verified". prob is set only when the signature is proven
// bad.
func (c *Checker) verify(ctx context.Context, cl *http.Client, f *File, fileURL string, budget *int) (status string, prob *Problem) {
	if f.signed == nil {
		return "invalid: the signed message does not decode", nil
	}
	host := hostOf(fileURL)
	var keyring openpgp.EntityList
	var skipped, failed, used []string
	for _, enc := range f.Encryption {
		u, err := url.Parse(enc)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			skipped = append(skipped, clip(enc, 80)+" (not a web URI)")
			continue
		}
		if !strings.EqualFold(u.Hostname(), host) {
			skipped = append(skipped, clip(enc, 80)+" (another host; not fetched)")
			continue
		}
		if *budget <= 0 {
			skipped = append(skipped, clip(enc, 80)+" (request budget spent)")
			continue
		}
		*budget--
		resp, body, err := c.get(ctx, cl, u.String(), maxKeySize)
		if err != nil {
			failed = append(failed, clip(enc, 80)+": "+err.Error())
			continue
		}
		if resp.StatusCode != http.StatusOK {
			failed = append(failed, fmt.Sprintf("%s: HTTP %d", clip(enc, 80), resp.StatusCode))
			continue
		}
		keys, err := readKeys(body)
		if err != nil {
			failed = append(failed, clip(enc, 80)+": "+clip(err.Error(), 120))
			continue
		}
		keyring = append(keyring, keys...)
		used = append(used, clip(enc, 80))
	}
	if len(keyring) == 0 {
		why := "no Encryption field names a key on " + host
		switch {
		case len(failed) > 0:
			why = "key not readable: " + strings.Join(failed, "; ")
		case len(skipped) > 0:
			why = "key at " + strings.Join(skipped, ", ")
		}
		return "signed, not verified: " + why, nil
	}
	cfg := &packet.Config{Time: c.now}
	signer, err := f.signed.VerifySignature(keyring, cfg)
	switch {
	case err == nil:
		fp := ""
		if signer != nil && signer.PrimaryKey != nil {
			fp = fmt.Sprintf("%X", signer.PrimaryKey.Fingerprint)
		}
		return "verified: signed by key " + fp + " from " + strings.Join(used, ", "), nil
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		// Signed by some other key: not proof of forgery (a separate
		// signing key is allowed), but not verified either.
		return "signed, not verified: the signing key is not the one at " + strings.Join(used, ", "), nil
	}
	msg := clip(err.Error(), 160)
	return "invalid: " + msg, &Problem{ProblemBadSignature, "the OpenPGP signature does not verify with the key from " + strings.Join(used, ", ") + ": " + msg}
}

// readKeys reads an armoured or binary OpenPGP public key.
func readKeys(b []byte) (openpgp.EntityList, error) {
	if bytes.Contains(b, []byte("-----BEGIN PGP")) {
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("read armoured OpenPGP key: %w", err)
		}
		return el, nil
	}
	el, err := openpgp.ReadKeyRing(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read OpenPGP key: %w", err)
	}
	return el, nil
}
