package lab

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// digestAuth verifies RFC 2617 / 7616 Digest (MD5, qop=auth or none) for
// HTTP and RTSP. The nonce is fixed per service, as on many devices.
type digestAuth struct {
	realm, nonce, opaque string
	user, pass           string
}

func newDigestAuth(realm, user, pass string) *digestAuth {
	return &digestAuth{realm: realm, nonce: randomHex(16), opaque: randomHex(8), user: user, pass: pass}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// challenge is the WWW-Authenticate value. HTTP offers qop; RTSP cameras
// usually do not.
func (d *digestAuth) challenge(qop bool) string {
	if qop {
		return fmt.Sprintf(`Digest realm="%s", qop="auth", nonce="%s", opaque="%s", algorithm=MD5`, d.realm, d.nonce, d.opaque)
	}
	return fmt.Sprintf(`Digest realm="%s", nonce="%s"`, d.realm, d.nonce)
}

// verify checks an Authorization header for method.
func (d *digestAuth) verify(header, method string) bool {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Digest") {
		return false
	}
	p := parseDigestParams(rest)
	if p == nil || p["username"] != d.user || p["realm"] != d.realm || p["nonce"] != d.nonce {
		return false
	}
	if alg := p["algorithm"]; alg != "" && !strings.EqualFold(alg, "MD5") {
		return false
	}
	ha1 := md5hex(d.user + ":" + d.realm + ":" + d.pass)
	ha2 := md5hex(method + ":" + p["uri"])
	var want string
	switch p["qop"] {
	case "":
		want = md5hex(ha1 + ":" + d.nonce + ":" + ha2)
	case "auth":
		want = md5hex(ha1 + ":" + d.nonce + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	default:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(p["response"]))) == 1
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// maxDigestParams bounds how many parameters a header may carry.
const maxDigestParams = 32

// parseDigestParams parses `k=v, k="quoted \"v\""` pairs. It returns nil
// on malformed input. Keys are lower-cased.
func parseDigestParams(s string) map[string]string {
	if len(s) > 4096 {
		return nil
	}
	out := map[string]string{}
	i, count := 0, 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			return out
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ',' && s[i] != ' ' {
			i++
		}
		key := strings.ToLower(s[start:i])
		if key == "" || i >= len(s) || s[i] != '=' {
			return nil
		}
		i++ // '='
		var val strings.Builder
		if i < len(s) && s[i] == '"' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				val.WriteByte(c)
				i++
			}
			if !closed {
				return nil
			}
		} else {
			for i < len(s) && s[i] != ',' && s[i] != ' ' {
				val.WriteByte(s[i])
				i++
			}
		}
		if count++; count > maxDigestParams {
			return nil
		}
		out[key] = val.String()
	}
}
