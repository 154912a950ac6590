package assess

import (
	"fmt"
	"slices"
	"strings"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/standard"
)

// Match selects findings that bear on a provision.
type Match struct {
	// Check is the finding's check id.
	Check string
	// Cites, when set, requires the finding to cite one of these provisions.
	Cites []string
	// AtLeast is the lowest severity that counts (Info findings never decide).
	AtLeast finding.Severity
	// Protocols, when set, restricts to findings on these protocols.
	Protocols []string
	// Where, when set, is a further condition on the finding.
	Where func(finding.Finding) bool
	// Says describes the selection for the rule text.
	Says string
}

func (m Match) matches(f finding.Finding) bool {
	if f.Check != m.Check || f.Severity < max(m.AtLeast, finding.Low) {
		return false
	}
	if len(m.Cites) > 0 && !slices.ContainsFunc(f.Provisions, func(p string) bool { return slices.Contains(m.Cites, p) }) {
		return false
	}
	if len(m.Protocols) > 0 && !slices.Contains(m.Protocols, f.Protocol) {
		return false
	}
	return m.Where == nil || m.Where(f)
}

// Source is one kind of evidence a rule draws on: the checks that must
// have run over targets of its kind, and when their coverage is complete.
type Source struct {
	Kind standard.Kind
	// Checks must all have run.
	Checks []string
	// Complete, when set, says whether the checks covered everything they
	// should have (every login service, every layer of the image) and why not.
	Complete func(in *Input) (bool, string)
	// Decisive, when set and true, lets complete, clean coverage by this
	// source pass the provision without a declaration.
	Decisive func(in *Input) bool
	// Says describes the source for the rule text.
	Says string
}

// Rule is how the tool decides one provision (or a group sharing one
// logic) from findings, the checks that ran and the declarations.
type Rule struct {
	ID string
	// Provisions are the catalogue ids the rule decides.
	Provisions []string
	// Text explains the rule in a sentence or two.
	Text string
	// Fails are findings that fail the provision, whatever is declared.
	Fails []Match
	// Indicators are findings that count against it but cannot decide
	// alone: they leave it INCONCLUSIVE.
	Indicators []Match
	Sources    []Source
	// Ignores lists checks whose findings do not bear on the provision
	// even though they cite it or the provision it was split from. The
	// findings of checks the rule does not mention at all (new checks) are
	// judged by the generic rule.
	Ignores []string
	// Declared, when set, reads what the declarations say beyond the
	// provision's own entry (the disclosure URL for 5.2-1).
	Declared func(in *Input) (implementation string, line int, ok bool)
}

// Check ids whose runs the rules look for.
const (
	checkDefaultCredentials    = finding.CheckDefaultCredentials
	checkUnauthenticatedAccess = finding.CheckUnauthenticatedAccess
	checkCleartext             = finding.CheckCleartextProtocol
	checkWeakTLS               = finding.CheckWeakTLS
	checkWeakSSH               = finding.CheckWeakSSH
	checkExposed               = finding.CheckExposedDebugService
	checkDisclosure            = finding.CheckVulnDisclosure
	checkHardCoded             = finding.CheckHardCodedCredentials
	checkPrivateKey            = finding.CheckEmbeddedPrivateKey
	checkSecret                = finding.CheckEmbeddedSecret
	checkBoot                  = finding.CheckInsecureBootService
	checkHardening             = finding.CheckBinaryHardening
	checkKnownVuln             = finding.CheckKnownVulnerability
	checkUnresponsive          = finding.CheckDeviceUnresponsive
	checkShared                = finding.CheckSharedSecret
)

// Rule ids for verdicts that no table rule decides.
const (
	RuleGeneric        = "generic"
	RuleDeclaration    = "declaration"
	RuleConditions     = "conditions"
	RuleReporting      = "reporting"
	RuleSupportPeriod  = "support-period"
	RuleNotImplemented = "declared-not-implemented"
)

func always(*Input) bool { return true }

// Rules returns the rule table: every provision iotcop can bring evidence
// for, with the findings that fail it, the findings that only indicate,
// and the checks whose clean runs count.
func Rules() []Rule {
	live := func(checks ...string) Source {
		return Source{Kind: standard.Network, Checks: checks, Complete: devicesAlive, Says: "live checks " + list(checks)}
	}
	image := func(checks ...string) Source {
		return Source{Kind: standard.Firmware, Checks: checks, Complete: imagesComplete, Says: "firmware analyses " + list(checks)}
	}
	cites := func(ids ...string) []string { return ids }
	return []Rule{
		{
			ID: "passwords", Provisions: []string{"5.1-1"},
			Text: "FAIL on an accepted default credential, access without any credential, a preset password in the firmware, " +
				"or one credential accepted by several units. PASS when the credential checks tried every reachable login " +
				"service (and, when an image was given, the firmware analysis ran on all of it) and found none.",
			Fails: []Match{
				{Check: checkDefaultCredentials, Says: "default credential accepted"},
				{Check: checkUnauthenticatedAccess, Cites: cites("5.1-1"), Says: "access without credentials"},
				{Check: checkHardCoded, Says: "preset password in the firmware"},
				{Check: checkShared, Cites: cites("5.1-1"), Says: "one credential accepted by several units"},
			},
			Sources: []Source{
				{Kind: standard.Network, Checks: []string{checkUnauthenticatedAccess, checkDefaultCredentials},
					Complete: loginCoverage, Decisive: always, Says: "credential checks on every login service"},
				image(checkHardCoded),
			},
		},
		{
			ID: "authentication-crypto", Provisions: []string{"5.1-3"},
			Text: "FAIL when a service takes credentials in clear text (telnet, FTP, HTTP Basic without TLS, plain MQTT). " +
				"The checks cannot see every authentication mechanism, so a PASS also needs the declaration.",
			Fails:   []Match{{Check: checkCleartext, Says: "credentials in clear text"}},
			Sources: []Source{live(checkCleartext)},
		},
		{
			ID: "disclosure-policy", Provisions: []string{"5.2-1"},
			Text: "FAIL when the manufacturer's site has no usable security.txt (none, no contact, expired). A policy " +
				"with lesser problems is an indicator. A PASS needs the published policy declared (vulnerability_disclosure.url); " +
				"the check on the manufacturer's site (--vendor-url) adds evidence.",
			Fails: []Match{{Check: checkDisclosure, AtLeast: finding.High, Says: "no usable disclosure policy on the manufacturer's site"}},
			Indicators: []Match{{Check: checkDisclosure, AtLeast: finding.Medium, Says: "problems in the manufacturer's security.txt",
				Where: func(f finding.Finding) bool { return f.Evidence["source"] != "device web interface" }}},
			Sources: []Source{{Kind: standard.Network, Checks: []string{checkDisclosure}, Says: "security.txt on the manufacturer's site",
				Complete: func(in *Input) (bool, string) {
					if len(in.VendorSites) == 0 {
						return false, "no manufacturer site was checked (--vendor-url)"
					}
					return true, ""
				}}},
			Declared: func(in *Input) (string, int, bool) {
				if in.Declarations == nil || in.Declarations.Disclosure.URL == "" {
					return "", 0, false
				}
				return "policy published at " + in.Declarations.Disclosure.URL, in.Declarations.Disclosure.Line, true
			},
		},
		{
			ID: "known-vulnerabilities", Provisions: []string{"5.2-3", "5.3-8"},
			Text: "Components with known vulnerabilities are indicators that vulnerabilities are not monitored or " +
				"fixed in time; they cannot decide alone.",
			Indicators: []Match{{Check: checkKnownVuln, Says: "component with a known vulnerability"}},
			Sources:    []Source{image(checkKnownVuln)},
		},
		{
			ID: "secure-storage", Provisions: []string{"5.4-1"},
			Text: "FAIL on private keys or secrets stored readable in the firmware, or one key shared by several units. " +
				"A PASS also needs the declaration: how parameters are stored cannot be fully seen from outside.",
			Fails: []Match{
				{Check: checkPrivateKey, Cites: cites("5.4-1"), Says: "private key in the firmware"},
				{Check: checkSecret, Cites: cites("5.4-1"), Says: "secret in the firmware"},
				{Check: checkShared, Cites: cites("5.4-1"), Says: "key shared by several units"},
			},
			Sources: []Source{image(checkPrivateKey, checkSecret)},
		},
		{
			ID: "hard-coded-parameters", Provisions: []string{"5.4-3"},
			Text: "FAIL on a private key or secret hard-coded in the firmware, or one key served by several units. " +
				"PASS when the key and secret analyses ran over every layer of the image and found none.",
			Fails: []Match{
				{Check: checkPrivateKey, Cites: cites("5.4-3"), Says: "private key in the firmware"},
				{Check: checkSecret, Cites: cites("5.4-3"), Says: "secret in the firmware"},
				{Check: checkShared, Cites: cites("5.4-1"), AtLeast: finding.High, Says: "key shared by several units"},
			},
			Sources: []Source{{Kind: standard.Firmware, Checks: []string{checkPrivateKey, checkSecret}, Complete: imagesComplete,
				Decisive: always, Says: "key and secret analyses over every layer"}},
		},
		{
			ID: "communication-crypto", Provisions: []string{"5.5-1"},
			Text: "FAIL on credentials in clear text, weak TLS or SSH (medium or worse), telnet or FTP started at boot, or a " +
				"private key shipped for TLS or shared by units; low-severity crypto findings are indicators. The checks " +
				"see only the services they recognise, so a PASS also needs the declaration.",
			Fails: []Match{
				{Check: checkCleartext, Says: "credentials in clear text"},
				{Check: checkWeakTLS, AtLeast: finding.Medium, Says: "weak TLS"},
				{Check: checkWeakSSH, AtLeast: finding.Medium, Says: "weak SSH"},
				{Check: checkBoot, Cites: cites("5.5-1"), AtLeast: finding.Medium, Says: "clear-text service started at boot"},
				{Check: checkPrivateKey, Cites: cites("5.5-1"), Says: "TLS private key in the firmware"},
				{Check: checkShared, Cites: cites("5.5-1"), Says: "key shared by several units"},
			},
			Indicators: []Match{
				{Check: checkWeakTLS, Says: "minor TLS weakness"},
				{Check: checkWeakSSH, Says: "minor SSH weakness"},
			},
			Sources: []Source{live(checkCleartext, checkWeakTLS, checkWeakSSH), image(checkBoot, checkPrivateKey)},
		},
		{
			ID: "authenticated-access", Provisions: []string{"5.5-4"},
			Text: "FAIL when a device function is reachable over the network without authentication (telnet shell, ADB, " +
				"anonymous MQTT or FTP, open RTSP, SNMP, CoAP, web admin).",
			Fails:   []Match{{Check: checkUnauthenticatedAccess, Says: "access without authentication"}},
			Sources: []Source{live(checkUnauthenticatedAccess)},
		},
		{
			ID: "authenticated-configuration", Provisions: []string{"5.5-5"},
			Text: "FAIL when a shell or an admin interface (telnet, ADB, web admin) is open without authentication: " +
				"whoever reaches it can change security-relevant configuration.",
			Fails: []Match{{Check: checkUnauthenticatedAccess, Protocols: []string{"telnet", "adb", "http"},
				Says: "configuration interface without authentication"}},
			Sources: []Source{live(checkUnauthenticatedAccess)},
		},
		{
			ID: "parameters-in-transit", Provisions: []string{"5.5-7"},
			Text:    "FAIL when credentials (critical security parameters) cross the network in clear text.",
			Fails:   []Match{{Check: checkCleartext, Says: "credentials in clear text"}},
			Sources: []Source{live(checkCleartext)},
		},
		{
			ID: "unused-interfaces", Provisions: []string{"5.6-1"},
			Text: "FAIL on a debug or legacy service reachable on the network (medium or worse), a listener missing " +
				"from the maker's manifest, or telnet/FTP/ADB started at boot. PASS when the exposure check compared " +
				"every listener with the manifest (--expected) and found nothing; otherwise a PASS also needs the declaration.",
			Fails: []Match{
				{Check: checkExposed, Cites: cites("5.6-1"), AtLeast: finding.Medium, Says: "debug or unexpected service exposed"},
				{Check: checkBoot, Cites: cites("5.6-1"), AtLeast: finding.Medium, Says: "debug or legacy service started at boot"},
			},
			Indicators: []Match{
				{Check: checkExposed, Cites: cites("5.6-1"), Says: "minor exposure"},
				{Check: checkBoot, Cites: cites("5.6-1"), Says: "minor boot-time exposure"},
			},
			Sources: []Source{
				{Kind: standard.Network, Checks: []string{checkExposed}, Complete: devicesAlive,
					Decisive: func(in *Input) bool { return in.Manifest }, Says: "exposure check (decisive with a manifest)"},
				image(checkBoot),
			},
		},
		{
			ID: "information-disclosure", Provisions: []string{"5.6-2"},
			Text: "FAIL when the device serves files or debug pages (/etc/passwd, /proc, pprof, debug CGIs) without " +
				"authentication; other exposures are indicators. The checks probe a short list, so a PASS also needs the declaration.",
			Fails: []Match{{Check: checkExposed, Cites: cites("5.6-2"), Says: "files or debug pages served",
				Where: func(f finding.Finding) bool { _, ok := f.Evidence["url"]; return ok }}},
			Indicators: []Match{{Check: checkExposed, Cites: cites("5.6-2"), Says: "service that may disclose information"}},
			Sources:    []Source{live(checkExposed)},
		},
		{
			ID: "debug-interfaces", Provisions: []string{"5.6-4"},
			Text: "FAIL when the firmware starts a shell without login on the serial console (a physically accessible " +
				"debug interface left enabled).",
			Fails:   []Match{{Check: checkBoot, Cites: cites("5.6-4"), AtLeast: finding.Medium, Says: "debug console or ADB enabled"}},
			Sources: []Source{image(checkBoot)},
		},
		{
			ID: "debug-interfaces-v3", Provisions: []string{"5.6-4A"},
			Text: "FAIL when a debug interface is enabled without access control: a console shell without login or ADB " +
				"started at boot, or ADB reachable on the network without key authentication.",
			Fails: []Match{
				{Check: checkBoot, Cites: cites("5.6-4"), AtLeast: finding.Medium, Says: "debug console or ADB enabled"},
				{Check: checkExposed, Protocols: []string{"adb"}, AtLeast: finding.High, Says: "ADB without authentication"},
			},
			Indicators: []Match{{Check: checkExposed, Protocols: []string{"adb"}, Says: "ADB reachable on the network"}},
			Sources:    []Source{image(checkBoot), live(checkExposed)},
		},
		{
			ID: "secure-development", Provisions: []string{"5.6-9"},
			Text: "Binaries built without hardening (stack protector, PIE, RELRO, NX) indicate gaps in secure development; " +
				"they cannot decide alone.",
			Indicators: []Match{{Check: checkHardening, Says: "binary without hardening"}},
			Sources:    []Source{image(checkHardening)},
		},
		{
			// No check sends input through user interfaces: declaration only,
			// and findings about network input (cited as 5.13-1) stay out.
			ID: "input-validation-ui", Provisions: []string{"5.13-1A"},
			Text:    "No check exercises user-interface input; the declaration decides.",
			Ignores: []string{checkUnresponsive},
		},
		{
			ID: "input-validation", Provisions: []string{"5.13-1", "5.13-1B"},
			Text: "FAIL when the robustness check (--robustness) names a malformed input after which the device stopped " +
				"answering or restarted. A device that stopped answering during the other checks is an indicator (it may " +
				"also be a defence such as rate limiting). Surviving the robustness probes is evidence, but a PASS also " +
				"needs the declaration.",
			Fails: []Match{{Check: checkUnresponsive, AtLeast: finding.High, Says: "crashed or restarted on malformed input",
				Where: func(f finding.Finding) bool { _, ok := f.Evidence["probe"]; return ok }}},
			Indicators: []Match{{Check: checkUnresponsive, Says: "device stopped answering"}},
			Sources: []Source{{Kind: standard.Network, Checks: []string{checkUnresponsive}, Complete: devicesAlive,
				Says: "robustness probes"}},
		},
		{
			ID: "resilience", Provisions: []string{"5.9-1"},
			Text: "A device that stopped answering during the checks, or after malformed input, indicates it is not resilient; " +
				"it cannot decide alone.",
			Indicators: []Match{{Check: checkUnresponsive, Says: "device stopped answering"}},
			Sources:    []Source{{Kind: standard.Network, Complete: devicesAlive, Says: "liveness after the checks"}},
		},
	}
}

func list(ids []string) string { return strings.Join(ids, ", ") }

// RuleFor returns the table rule deciding catalogue provision id.
func RuleFor(id string) (Rule, bool) {
	for _, r := range Rules() {
		if slices.Contains(r.Provisions, id) {
			return r, true
		}
	}
	return Rule{}, false
}

// loginProtocols are the protocols whose services always ask for a login:
// a credential check that made no attempt on one did not cover it.
var loginProtocols = []string{"telnet", "ssh", "ftp", "snmp"}

// loginCoverage is complete when every reachable login service was tried
// by the credential checks (or found open by them).
func loginCoverage(in *Input) (bool, string) {
	if ok, why := devicesAlive(in); !ok {
		return false, why
	}
	touched := map[string]bool{}
	for _, f := range in.Findings {
		if f.Check == checkDefaultCredentials || f.Check == checkUnauthenticatedAccess {
			touched[fmt.Sprintf("%s|%d|%s", f.Host, f.Port, f.Transport)] = true
		}
	}
	var missed []string
	logins := 0
	for _, d := range in.Targets.Devices {
		for _, s := range d.Services {
			if !slices.Contains(loginProtocols, s.Protocol) && s.Attempts == 0 {
				continue
			}
			logins++
			if s.Attempts == 0 && !touched[fmt.Sprintf("%s|%d|%s", d.Address, s.Port, s.Transport)] {
				missed = append(missed, fmt.Sprintf("%s %s:%d", s.Protocol, d.Address, s.Port))
			}
		}
	}
	if len(missed) > 0 {
		return false, "no credential was tried on " + joinMax(missed, 5)
	}
	if logins == 0 {
		return false, "no login service was found on the network, so no password could be tried"
	}
	return true, ""
}

// devicesAlive is complete when every device still answered after the checks.
func devicesAlive(in *Input) (bool, string) {
	var dead []string
	for _, d := range in.Targets.Devices {
		if d.Alive != nil && !*d.Alive {
			dead = append(dead, d.Address)
		}
	}
	if len(dead) > 0 {
		return false, "stopped answering during the checks: " + joinMax(dead, 5)
	}
	return true, ""
}

// imagesComplete is complete when every image unpacked fully and every
// analysis finished: an opaque (encrypted or unknown) or failed layer, or a
// failed analysis, may hide what the rule looks for.
func imagesComplete(in *Input) (bool, string) {
	var gaps []string
	for _, img := range in.Targets.Images {
		opaque, failed := 0, 0
		for _, l := range img.Layers {
			switch l.Status {
			case "opaque":
				opaque++
			case "failed":
				failed++
			}
		}
		if opaque > 0 {
			gaps = append(gaps, fmt.Sprintf("%s: %d opaque layer(s) not inspected", img.Image, opaque))
		}
		if failed > 0 {
			gaps = append(gaps, fmt.Sprintf("%s: %d layer(s) failed to unpack", img.Image, failed))
		}
		if n := len(img.AnalysisErrors); n > 0 {
			gaps = append(gaps, fmt.Sprintf("%s: %d analysis error(s)", img.Image, n))
		}
	}
	if len(gaps) > 0 {
		return false, joinMax(gaps, 5)
	}
	return true, ""
}
