// Package disclosure finds and judges a vulnerability disclosure policy
// published as an RFC 9116 security.txt file: it fetches
// /.well-known/security.txt (and the legacy /security.txt) over HTTPS and
// HTTP, parses its fields, and names every problem separately (missing,
// plain HTTP only, non-canonical location, wrong Content-Type, no Contact,
// missing or past Expires, an Expires more than a year ahead, a Canonical
// that does not name the URL, a bad OpenPGP signature ...). EN 303 645
// provision 5.2-1 and UK PSTI requirement 2 ask manufacturers to publish
// such a policy.
package disclosure

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// Problem codes: stable names for what is wrong with a policy.
const (
	ProblemMissing            = "missing"             // no security.txt at any location tried
	ProblemNotHTTPS           = "not-https"           // served over plain HTTP only
	ProblemLegacyLocation     = "legacy-location"     // only at /security.txt, not /.well-known/security.txt
	ProblemContentType        = "content-type"        // not text/plain; charset=utf-8
	ProblemTooLarge           = "too-large"           // larger than MaxFileSize (the rest was not read)
	ProblemNotUTF8            = "not-utf8"            // the file is not valid UTF-8
	ProblemSyntax             = "syntax"              // a line that is neither a field, a comment nor blank
	ProblemBadSignedMessage   = "bad-signed-message"  // an OpenPGP cleartext frame that does not decode
	ProblemNoContact          = "no-contact"          // Contact is required
	ProblemBadContact         = "bad-contact"         // Contact is not a URI, or a web URI without https
	ProblemNoExpires          = "no-expires"          // Expires is required
	ProblemMultipleExpires    = "multiple-expires"    // Expires must appear once
	ProblemBadExpires         = "bad-expires"         // Expires is not an RFC 3339 date-time
	ProblemExpired            = "expired"             // Expires is in the past
	ProblemExpiresTooFar      = "expires-too-far"     // Expires is more than a year ahead
	ProblemBadURI             = "bad-uri"             // Encryption, Policy, ... is not a URI or not https
	ProblemMultipleLanguages  = "multiple-languages"  // Preferred-Languages must appear at most once
	ProblemBadLanguage        = "bad-language"        // a Preferred-Languages entry is no language tag
	ProblemCanonicalMismatch  = "canonical-mismatch"  // Canonical does not name the URL the file came from
	ProblemBadSignature       = "bad-signature"       // the OpenPGP signature does not verify
	ProblemSignedNoCanonical  = "signed-no-canonical" // signed files should name their Canonical URL
	ProblemRedirectOffsite    = "redirect-offsite"    // a redirect to another site, not followed
	ProblemHTMLInsteadOfFile  = "html-page"           // an HTML page where the file should be
	maxSyntaxProblemsReported = 5
)

// MaxFileSize caps how much of a security.txt is read; real files are a
// few hundred bytes.
const MaxFileSize = 32 << 10

// Problem is one thing wrong with a policy.
type Problem struct {
	Code   string // one of the Problem* constants
	Detail string // what exactly, for people
}

// String renders "code: detail".
func (p Problem) String() string { return p.Code + ": " + p.Detail }

// File is a parsed security.txt. Field values are as written (trimmed);
// fields may repeat where RFC 9116 allows it.
type File struct {
	Contact            []string
	Expires            time.Time // zero when absent or unparseable
	ExpiresRaw         []string  // every Expires value as written
	Encryption         []string
	Acknowledgments    []string
	Canonical          []string
	Policy             []string
	Hiring             []string
	PreferredLanguages []string
	// Other counts fields RFC 9116 does not define (allowed as extensions).
	Other int
	// Signed reports an OpenPGP cleartext signature frame.
	Signed bool

	signed *clearsign.Block // the decoded frame, for verification
}

// fieldName matches RFC 9116 field names (an RFC 5322 field-name: printable
// ASCII except colon); names are compared case-insensitively.
var fieldName = regexp.MustCompile(`^[!-9;-~]+$`)

// languageTag is the shape of a BCP 47 tag ("en", "pt-BR", "zh-Hant-TW").
var languageTag = regexp.MustCompile(`^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$`)

// Parse reads a security.txt (signed or not). It always returns a File,
// with the fields it could read, and the syntax and field problems found.
// Problems that depend on time or on where the file came from are judged by
// Judge.
func Parse(data []byte) (*File, []Problem) {
	f := &File{}
	var probs []Problem
	if len(data) > MaxFileSize {
		probs = append(probs, Problem{ProblemTooLarge, fmt.Sprintf("larger than %d bytes; only the start was read", MaxFileSize)})
		data = data[:MaxFileSize]
	}
	if !utf8.Valid(data) {
		probs = append(probs, Problem{ProblemNotUTF8, "the file is not valid UTF-8"})
	}
	text := data
	if bytes.Contains(data, []byte("-----BEGIN PGP SIGNED MESSAGE-----")) {
		f.Signed = true
		block, rest := clearsign.Decode(data)
		if block == nil {
			probs = append(probs, Problem{ProblemBadSignedMessage, "an OpenPGP cleartext signature frame that does not decode (no signature block?)"})
			text = stripSignatureFrame(data)
		} else {
			f.signed = block
			text = block.Plaintext
			before := data[:bytes.Index(data, []byte("-----BEGIN PGP SIGNED MESSAGE-----"))]
			if len(bytes.TrimSpace(before)) > 0 || len(bytes.TrimSpace(rest)) > 0 {
				probs = append(probs, Problem{ProblemSyntax, "text outside the signed message (it is not covered by the signature)"})
			}
		}
	}

	syntax := 0
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !fieldName.MatchString(name) {
			syntax++
			if syntax <= maxSyntaxProblemsReported {
				probs = append(probs, Problem{ProblemSyntax, fmt.Sprintf("line %d is not a field, a comment or blank: %q", i+1, clip(line, 60))})
			}
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "contact":
			f.Contact = append(f.Contact, value)
		case "expires":
			f.ExpiresRaw = append(f.ExpiresRaw, value)
		case "encryption":
			f.Encryption = append(f.Encryption, value)
		case "acknowledgments":
			f.Acknowledgments = append(f.Acknowledgments, value)
		case "canonical":
			f.Canonical = append(f.Canonical, value)
		case "policy":
			f.Policy = append(f.Policy, value)
		case "hiring":
			f.Hiring = append(f.Hiring, value)
		case "preferred-languages":
			if f.PreferredLanguages != nil {
				probs = append(probs, Problem{ProblemMultipleLanguages, "Preferred-Languages appears more than once"})
				continue
			}
			f.PreferredLanguages = []string{}
			for _, tag := range strings.Split(value, ",") {
				tag = strings.TrimSpace(tag)
				if !languageTag.MatchString(tag) {
					probs = append(probs, Problem{ProblemBadLanguage, fmt.Sprintf("Preferred-Languages entry %q is not a language tag", clip(tag, 40))})
					continue
				}
				f.PreferredLanguages = append(f.PreferredLanguages, tag)
			}
		default:
			f.Other++
		}
	}
	if syntax > maxSyntaxProblemsReported {
		probs = append(probs, Problem{ProblemSyntax, fmt.Sprintf("%d more lines that are not fields", syntax-maxSyntaxProblemsReported)})
	}

	if len(f.Contact) == 0 {
		probs = append(probs, Problem{ProblemNoContact, "no Contact field (required: how to report a vulnerability)"})
	}
	for _, c := range f.Contact {
		if msg := uriProblem(c, true); msg != "" {
			probs = append(probs, Problem{ProblemBadContact, fmt.Sprintf("Contact %q %s", clip(c, 80), msg)})
		}
	}
	switch len(f.ExpiresRaw) {
	case 0:
		probs = append(probs, Problem{ProblemNoExpires, "no Expires field (required)"})
	case 1:
		t, err := parseExpires(f.ExpiresRaw[0])
		if err != nil {
			probs = append(probs, Problem{ProblemBadExpires, fmt.Sprintf("Expires %q is not an RFC 3339 date-time such as 2026-12-31T23:59:59Z", clip(f.ExpiresRaw[0], 60))})
		} else {
			f.Expires = t
		}
	default:
		probs = append(probs, Problem{ProblemMultipleExpires, fmt.Sprintf("Expires appears %d times (must appear once)", len(f.ExpiresRaw))})
	}
	for _, fl := range []struct {
		name   string
		values []string
	}{
		{"Encryption", f.Encryption}, {"Acknowledgments", f.Acknowledgments}, {"Canonical", f.Canonical},
		{"Policy", f.Policy}, {"Hiring", f.Hiring},
	} {
		for _, v := range fl.values {
			if msg := uriProblem(v, false); msg != "" {
				probs = append(probs, Problem{ProblemBadURI, fmt.Sprintf("%s %q %s", fl.name, clip(v, 80), msg)})
			}
		}
	}
	return f, probs
}

// stripSignatureFrame drops the armour lines of a broken signed message so
// that its fields can still be read.
func stripSignatureFrame(data []byte) []byte {
	var out []byte
	inSig := false
	for _, line := range bytes.Split(data, []byte("\n")) {
		l := bytes.TrimSpace(line)
		switch {
		case bytes.HasPrefix(l, []byte("-----BEGIN PGP SIGNATURE")):
			inSig = true
			continue
		case bytes.HasPrefix(l, []byte("-----END PGP SIGNATURE")):
			inSig = false
			continue
		case bytes.HasPrefix(l, []byte("-----BEGIN PGP SIGNED MESSAGE")), bytes.HasPrefix(l, []byte("Hash:")):
			continue
		case inSig:
			continue
		}
		out = append(append(out, bytes.TrimPrefix(line, []byte("- "))...), '\n')
	}
	return out
}

// uriProblem says what is wrong with a field's URI ("" when nothing).
// RFC 9116 section 2.3: web URIs must use https. Contact may also be
// mailto: or tel:, Encryption openpgp4fpr: or dns:, so only the absence of
// a scheme and the use of http are judged.
func uriProblem(v string, contact bool) string {
	if v == "" {
		return "is empty"
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" {
		if contact && strings.Contains(v, "@") && !strings.Contains(v, ":") {
			return `is not a URI (an e-mail address needs "mailto:")`
		}
		return "is not an absolute URI"
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "is a web URI that does not use https"
	case "https":
		if u.Host == "" {
			return "names no host"
		}
	}
	return ""
}

// parseExpires reads an RFC 3339 date-time (the "T" and "Z" may be lower case).
func parseExpires(v string) (time.Time, error) {
	return time.Parse(time.RFC3339, strings.ToUpper(v))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Judge adds the problems that depend on the time and on where the file
// was retrieved from (retrievedFrom lists the URL asked for and, after
// redirects, the final one).
func (f *File) Judge(now time.Time, retrievedFrom ...string) []Problem {
	var probs []Problem
	if !f.Expires.IsZero() {
		switch {
		case !f.Expires.After(now):
			probs = append(probs, Problem{ProblemExpired, fmt.Sprintf("expired on %s", f.Expires.UTC().Format(time.RFC3339))})
		case f.Expires.After(now.AddDate(1, 0, 0)):
			probs = append(probs, Problem{ProblemExpiresTooFar, fmt.Sprintf("Expires %s is more than a year ahead (RFC 9116 recommends less than a year, so that stale policies lapse)", f.Expires.UTC().Format(time.RFC3339))})
		}
	}
	if len(f.Canonical) > 0 && len(retrievedFrom) > 0 {
		match := false
		for _, c := range f.Canonical {
			for _, r := range retrievedFrom {
				if sameURL(c, r) {
					match = true
				}
			}
		}
		if !match {
			probs = append(probs, Problem{ProblemCanonicalMismatch, fmt.Sprintf("retrieved from %s but Canonical names %s (the contents should not be trusted)",
				retrievedFrom[len(retrievedFrom)-1], clip(strings.Join(f.Canonical, ", "), 200))})
		}
	}
	if f.Signed && len(f.Canonical) == 0 {
		probs = append(probs, Problem{ProblemSignedNoCanonical, "signed, but no Canonical field says where the signed file belongs"})
	}
	return probs
}

// sameURL compares two URLs after normalising scheme and host case, the
// default port and an empty path.
func sameURL(a, b string) bool {
	na, oka := normalURL(a)
	nb, okb := normalURL(b)
	return oka && okb && na == nb
}

func normalURL(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = joinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	return scheme + "://" + host + p, true
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}
