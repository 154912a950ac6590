package httpproto

import (
	"bytes"
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// Limits for page analysis: a hostile page is at most maxBody bytes (the
// read is capped) and these bound what is kept of it.
const (
	maxForms      = 16
	maxInputs     = 64
	maxTextBytes  = 16 << 10
	maxTitleBytes = 200
)

// input is one form control.
type input struct {
	tag   string // "input", "select", "textarea", "button"
	typ   string // lower-case type attribute ("" for select/textarea)
	name  string
	value string
}

// form is one <form> and its controls.
type form struct {
	action string
	method string // lower case; "get" when absent
	inputs []input
}

// passwordFields returns the names of the form's password inputs.
func (f form) passwordFields() []string {
	var out []string
	for _, in := range f.inputs {
		if in.tag == "input" && in.typ == "password" {
			out = append(out, in.name)
		}
	}
	return out
}

// userField guesses the form's user-name input: a text-like input whose
// name says so, else the first text-like input.
func (f form) userField() string {
	first := ""
	for _, in := range f.inputs {
		if in.tag != "input" || in.name == "" {
			continue
		}
		switch in.typ {
		case "", "text", "email", "tel":
		default:
			continue
		}
		if first == "" {
			first = in.name
		}
		if userNameRe.MatchString(in.name) {
			return in.name
		}
	}
	return first
}

var userNameRe = regexp.MustCompile(`(?i)user|login|name|account|email|^id$|^usr|^uid`)

// page is what the analysis of one HTML document found.
type page struct {
	title    string
	headings string // text of h1-h3, lower case
	text     string // visible text, lower case, capped
	forms    []form
	// controls counts the user-facing controls on the page (inputs other
	// than hidden/submit/button/image/reset, selects, textareas), inside
	// forms or not.
	controls    int
	hasPassword bool
	// hasLogout is set by a link or button that logs out: a page that
	// offers it belongs to a logged-in area.
	hasLogout bool
}

// parsePage tokenizes an HTML document (golang.org/x/net/html) and collects
// the title, headings, visible text, forms and controls.
func parsePage(body []byte) page {
	var p page
	z := html.NewTokenizer(bytes.NewReader(body))
	z.SetMaxBuf(len(body) + 1024)
	var (
		inTitle, inScript bool
		headingDepth      int
		cur               = -1 // index of the open form, -1 when none
		text, headings    strings.Builder
		title             strings.Builder
	)
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			p.title = cleanText(title.String(), maxTitleBytes)
			p.headings = strings.ToLower(cleanText(headings.String(), maxTextBytes))
			p.text = strings.ToLower(cleanText(text.String(), maxTextBytes))
			if logoutRe.MatchString(p.text) {
				p.hasLogout = true
			}
			return p
		case html.TextToken:
			if inScript {
				continue
			}
			t := z.Text()
			if inTitle && title.Len() < maxTitleBytes*2 {
				title.Write(t)
			}
			if headingDepth > 0 && headings.Len() < maxTextBytes {
				headings.Write(t)
				headings.WriteByte(' ')
			}
			if text.Len() < maxTextBytes {
				text.Write(t)
				text.WriteByte(' ')
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			if tt == html.EndTagToken {
				switch tag {
				case "title":
					inTitle = false
				case "script", "style":
					inScript = false
				case "h1", "h2", "h3":
					if headingDepth > 0 {
						headingDepth--
					}
				case "form":
					cur = -1
				}
				continue
			}
			attrs := map[string]string{}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				if len(attrs) < 32 {
					key := strings.ToLower(string(k))
					if _, dup := attrs[key]; !dup {
						attrs[key] = string(v)
					}
				}
			}
			switch tag {
			case "title":
				inTitle = tt == html.StartTagToken
			case "script", "style":
				inScript = tt == html.StartTagToken
			case "h1", "h2", "h3":
				if tt == html.StartTagToken {
					headingDepth++
				}
			case "form":
				if len(p.forms) < maxForms {
					method := strings.ToLower(strings.TrimSpace(attrs["method"]))
					if method == "" {
						method = "get"
					}
					p.forms = append(p.forms, form{action: strings.TrimSpace(attrs["action"]), method: method})
					cur = len(p.forms) - 1
				} else {
					cur = -1
				}
			case "a":
				if logoutRe.MatchString(attrs["href"]) {
					p.hasLogout = true
				}
			case "input", "select", "textarea", "button":
				if logoutRe.MatchString(attrs["value"]) || logoutRe.MatchString(attrs["onclick"]) {
					p.hasLogout = true
				}
				in := input{tag: tag, name: attrs["name"], value: attrs["value"]}
				if tag == "input" {
					in.typ = strings.ToLower(strings.TrimSpace(attrs["type"]))
					if in.typ == "password" {
						p.hasPassword = true
					}
				}
				if userFacing(in) {
					p.controls++
				}
				if cur >= 0 && len(p.forms[cur].inputs) < maxInputs {
					p.forms[cur].inputs = append(p.forms[cur].inputs, in)
				}
			}
		}
	}
}

// userFacing reports whether a control is one a person fills in.
func userFacing(in input) bool {
	switch in.tag {
	case "select", "textarea":
		return true
	case "input":
		switch in.typ {
		case "hidden", "submit", "button", "image", "reset", "file":
			return false
		}
		return true
	}
	return false
}

// loginForm returns the first form with a password input.
func (p page) loginForm() (form, bool) {
	for _, f := range p.forms {
		if len(f.passwordFields()) > 0 {
			return f, true
		}
	}
	return form{}, false
}

var spaceRe = regexp.MustCompile(`\s+`)

func cleanText(s string, max int) string {
	s = strings.TrimSpace(spaceRe.ReplaceAllString(s, " "))
	if len(s) > max {
		s = s[:max]
	}
	return strings.ToValidUTF8(s, "")
}

// loginWords mark a page whose purpose is logging in.
var loginWords = []string{"login", "log in", "sign in", "signin", "logon", "log on"}

// loginShaped reports a form that holds a password and at most one other
// text field, nothing else a person would fill in (a remember-me checkbox
// aside): the shape of a login form.
func (f form) loginShaped() bool {
	passwords, texts := 0, 0
	for _, in := range f.inputs {
		switch {
		case in.tag == "input" && in.typ == "password":
			passwords++
		case in.tag == "input" && (in.typ == "" || in.typ == "text" || in.typ == "email" || in.typ == "tel" || in.typ == "number"):
			texts++
		case in.tag == "input" && in.typ == "checkbox":
		case userFacing(in):
			return false
		}
	}
	return passwords == 1 && texts <= 1
}

// isLoginPage reports whether p is a login page: it has a password input
// and either speaks of logging in in its title or headings, has a
// login-shaped form, or has hardly any other control.
func (p page) isLoginPage() bool {
	if !p.hasPassword {
		return false
	}
	if p.controls <= 2 {
		return true
	}
	head := strings.ToLower(p.title) + " " + p.headings
	for _, w := range loginWords {
		if strings.Contains(head, w) {
			return true
		}
	}
	for _, f := range p.forms {
		if f.loginShaped() {
			return true
		}
	}
	return false
}

// logoutRe matches a way to log out (link target, button, text).
var logoutRe = regexp.MustCompile(`(?i)\blog[ _-]?out\b|\blog[ _-]?off\b|\bsign[ _-]?out\b|logout\.`)

// adminWords are what configuration pages of devices talk about.
var adminWords = []string{
	"admin", "configuration", "settings", "setup", "maintenance", "serial number", "mac address",
	"system status", "device status", "device info", "firmware", "factory default", "factory reset",
	"reboot", "restart device", "wireless", "wlan", "ssid", "dhcp", "port forwarding", "lan ",
	"wan ", "dns server", "ntp", "change password", "user management", "system log",
	"upgrade", "backup", "restore", "management", "control panel", "dashboard",
}

// adminSigns returns the admin words found in the title and headings and
// in the whole text.
func (p page) adminSigns() (head, all []string) {
	headText := strings.ToLower(p.title) + " " + p.headings + " "
	text := p.text + " "
	for _, w := range adminWords {
		inHead := strings.Contains(headText, w)
		if inHead {
			head = append(head, strings.TrimSpace(w))
		}
		if inHead || strings.Contains(text, w) {
			all = append(all, strings.TrimSpace(w))
		}
	}
	return head, all
}

// isAdminPage is deliberately strict, because a false "open admin page"
// is worse than a miss. The page must not be a login page and must speak of
// administration in its title or headings; then either it carries form
// controls a person would change and two distinct admin terms, or it offers
// a way to log out (so it belongs to a logged-in area) and three distinct
// admin terms.
func (p page) isAdminPage() (bool, []string) {
	if p.isLoginPage() {
		return false, nil
	}
	head, all := p.adminSigns()
	if len(head) == 0 {
		return false, nil
	}
	switch {
	case p.controls >= 2 && len(p.forms) > 0 && len(all) >= 2:
		return true, all
	case p.hasLogout && len(all) >= 3:
		return true, all
	}
	return false, nil
}

// busyboxErrorPage matches BusyBox httpd's built-in error pages.
var busyboxErrorPage = regexp.MustCompile(`^<HTML><HEAD><TITLE>(\d{3}) [^<]*</TITLE></HEAD>\n<BODY><H1>(\d{3}) `)

// busyboxETag matches BusyBox httpd's ETag: hex mtime, dash, hex size.
var busyboxETag = regexp.MustCompile(`^"[0-9a-f]+-[0-9a-f]+"$`)
