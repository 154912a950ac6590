// Package authparam reads the parameters of HTTP-style authentication
// challenges (WWW-Authenticate), shared by HTTP and RTSP, which use the same
// syntax (RFC 7235, RFC 2326). Digest challenges are parsed by
// github.com/icholy/digest; this covers Basic and single parameters.
package authparam

import "strings"

// Basic reads `Basic realm="..."` and reports whether v is a Basic
// challenge at all.
func Basic(v string) (realm string, ok bool) {
	if len(v) < 5 || !strings.EqualFold(v[:5], "basic") || (len(v) > 5 && v[5] != ' ' && v[5] != '\t') {
		return "", false
	}
	return Value(v[5:], "realm"), true
}

// Value extracts one auth-param (quoted string or token) from a
// challenge's parameter list; "" when absent.
func Value(params, name string) string {
	s := params
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t,")
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return ""
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		var value string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			value = b.String()
			if i < len(s) {
				i++
			}
			s = s[i:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			value, s = s[:end], s[end:]
		}
		if strings.EqualFold(key, name) {
			return value
		}
	}
	return ""
}
