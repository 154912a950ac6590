package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/iotcop/iotcop/creds"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/proto"
)

// DefaultCredentials tries the dictionary against every service that has
// logins. It claims a credential only on the protocol's positive proof, and
// first learns how the service fails with a random wrong credential: a
// service that "accepts" that is reported as accepting anything, never as
// having a default password.
type DefaultCredentials struct {
	// Auth maps protocol name to its authenticator.
	Auth map[string]proto.Authenticator
	// Dict is the credential source.
	Dict *creds.Dictionary
	// Budget caps attempts per service.
	Budget creds.Budget
	// Parallel is the number of login sessions per service (default 1;
	// --aggressive raises it). They share the list and the budget.
	Parallel int
}

// ID implements Check.
func (c *DefaultCredentials) ID() string { return finding.CheckDefaultCredentials }

// Provisions implements Check.
func (c *DefaultCredentials) Provisions() []string { return []string{"5.1-1"} }

// Intrusive implements Check.
func (c *DefaultCredentials) Intrusive() bool { return true }

// maxConsecutiveErrors ends a service's attempts: repeated disconnects are
// a lockout sign (or a device in distress).
const maxConsecutiveErrors = 3

// Run implements Check.
func (c *DefaultCredentials) Run(ctx context.Context, dev *Device) ([]finding.Finding, error) {
	var out []finding.Finding
	var errs []error
	for i, s := range dev.Services {
		auth := c.Auth[s.Identity.Protocol]
		if auth == nil {
			continue
		}
		// A service already open to anyone needs no password guessing.
		// SNMP is the exception: its "open access" is the default
		// community itself, which is also a default credential.
		if _, open := dev.wasAccepted(i); open && s.Identity.Protocol != "snmp" {
			continue
		}
		f, err := c.service(ctx, dev, i, s, auth)
		if f != nil {
			out = append(out, *f)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: %w", c.ID(), s.Endpoint.Addr(), err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return out, errors.Join(errs...)
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *DefaultCredentials) service(ctx context.Context, dev *Device, i int, s Service, auth proto.Authenticator) (*finding.Finding, error) {
	sess, err := auth.Open(ctx, s.Endpoint, s.Identity)
	if errors.Is(err, proto.ErrNoLogin) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open login session: %w", err)
	}
	defer sess.Close()
	attempts := 0
	defer func() { dev.note(i, false, false, attempts) }()

	// Open may have learnt the vendor (an HTTP realm behind a probe path).
	vendor := dev.Vendor
	if vendor == "" {
		vendor = s.Identity.Vendor
	}
	list := c.Dict.For(s.Identity.Protocol, vendor)
	budget := c.Budget.PerService
	if budget <= 0 {
		budget = creds.DefaultBudget().PerService
	}
	if len(list) > budget {
		list = list[:budget]
	}
	st := &attemptState{list: list, workers: max(c.Parallel, 1)}

	// Extra sessions (--aggressive) start on the list at once; the first
	// session first learns the failure signature with a random wrong
	// credential, alone when there is only one session. A service that
	// accepts the random pair accepts anything: whatever the list found
	// then proves nothing about default passwords.
	var wg sync.WaitGroup
	for w := 1; w < min(st.workers, len(list)+1); w++ {
		// One that cannot be opened just leaves its share to the others.
		extra, err := auth.Open(ctx, s.Endpoint, s.Identity)
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer extra.Close()
			st.work(ctx, extra)
		}()
	}
	wrong := proto.Credential{Username: "iotcop" + randomToken(3), Password: randomToken(8)}
	if s.Identity.Protocol == "snmp" {
		wrong.Username = ""
	}
	calib, calibErr := sess.Try(ctx, wrong)
	st.calibrated(calib, calibErr)
	st.work(ctx, sess)
	wg.Wait()
	attempts = st.attempts
	if st.anyAccepted {
		f := base(&UnauthenticatedAccess{}, finding.Critical, s, fmt.Sprintf("%s accepts any credential", s.Identity.Protocol))
		f.Evidence["proof"] = calib.Proof
		f.Evidence["tried"] = "a random username and password"
		f.Remediation = "Make the service check credentials; require a unique per-device or user-set password."
		dev.note(i, false, true, 0)
		return &f, nil
	}
	if st.found == nil {
		return nil, st.stopErr
	}
	cred, res := *st.found, st.foundResult
	f := base(c, finding.Critical, s, fmt.Sprintf("%s accepts a default credential", s.Identity.Protocol))
	if cred.Username != "" || s.Identity.Protocol != "snmp" {
		f.Evidence["username"] = cred.Username
	}
	if s.Identity.Protocol == "snmp" {
		f.Evidence["community"] = finding.Secret(cred.Password)
		f.Title = "SNMP accepts a default community"
	} else {
		f.Evidence["password"] = finding.Secret(cred.Password)
	}
	f.Evidence["proof"] = res.Proof
	f.Evidence["attempts"] = st.foundAt
	f.Remediation = "Ship without a universal default password: a unique per-device password or one the user must set at first use (EN 303 645 5.1-1, PSTI requirement 1)."
	dev.note(i, true, false, 0)
	label := s.Identity.Protocol + " " + cred.Username + ":" + finding.Secret(cred.Password).Redacted()
	dev.Observe(i, ObservedCredential, credentialDigest(s.Identity.Protocol, cred.Username, cred.Password), label)
	return &f, nil
}

// maxConsecutiveUnknown ends a service's attempts when it gives no
// verdict: a prompt that answers every password the same way, or a login
// flow the protocol package does not understand. Waiting out more attempts
// would prove nothing.
const maxConsecutiveUnknown = 3

// attemptState hands credentials to one or more login sessions and
// collects their verdicts; the first proof or stop sign ends all of them.
type attemptState struct {
	mu          sync.Mutex
	list        []proto.Credential
	next        int
	workers     int
	attempts    int
	errs        int // consecutive errors
	unknowns    int // consecutive results proving nothing
	stopped     bool
	stopErr     error
	found       *proto.Credential
	foundResult proto.LoginResult
	foundAt     int
	anyAccepted bool // the random wrong credential was accepted
}

// calibrated records the random wrong credential's result.
func (st *attemptState) calibrated(res proto.LoginResult, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.attempts++
	switch {
	case err != nil:
		// The list attempts decide whether errors persist.
	case res.Outcome == proto.Accepted:
		st.anyAccepted = true
		st.stop(nil)
	case res.Outcome == proto.LockedOut:
		st.stop(fmt.Errorf("service locked out before any default was tried: %s", res.Detail))
	}
}

func (st *attemptState) take() (proto.Credential, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped || st.next >= len(st.list) {
		return proto.Credential{}, false
	}
	c := st.list[st.next]
	st.next++
	return c, true
}

func (st *attemptState) stop(err error) {
	if !st.stopped {
		st.stopped, st.stopErr = true, err
	}
}

func (st *attemptState) record(c proto.Credential, res proto.LoginResult, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.attempts++
	if err != nil {
		st.errs++
		// Parallel sessions may each see one disconnect.
		if st.errs >= maxConsecutiveErrors+st.workers-1 {
			st.stop(fmt.Errorf("stopped after %d consecutive errors (lockout or overload?): %w", st.errs, err))
		}
		return
	}
	st.errs = 0
	switch res.Outcome {
	case proto.Accepted:
		if st.found == nil {
			st.found, st.foundResult, st.foundAt = &c, res, st.attempts
		}
		st.stop(nil)
	case proto.LockedOut:
		st.stop(fmt.Errorf("stopped: lockout sign after %d attempts: %s", st.attempts, res.Detail))
	case proto.Unknown:
		st.unknowns++
		if st.unknowns >= maxConsecutiveUnknown+st.workers-1 {
			st.stop(fmt.Errorf("stopped: %d attempts in a row proved nothing either way (%s)", st.unknowns, res.Detail))
		}
	default:
		st.unknowns = 0
	}
}

// work tries credentials on one session until the list ends or a verdict
// stops every session.
func (st *attemptState) work(ctx context.Context, sess proto.LoginSession) {
	for ctx.Err() == nil {
		c, ok := st.take()
		if !ok {
			return
		}
		res, err := sess.Try(ctx, c)
		st.record(c, res, err)
	}
}

// UnauthenticatedAccess asks each protocol whether it lets anyone in with
// no credential at all (telnet shell, anonymous MQTT/FTP, open RTSP, SNMP
// public, CoAP resources, ADB).
type UnauthenticatedAccess struct {
	Probers map[string]proto.OpenAccessProber
}

// ID implements Check.
func (c *UnauthenticatedAccess) ID() string { return finding.CheckUnauthenticatedAccess }

// Provisions implements Check.
func (c *UnauthenticatedAccess) Provisions() []string { return []string{"5.1-1", "5.5-4"} }

// Intrusive implements Check.
func (c *UnauthenticatedAccess) Intrusive() bool { return false }

// Run implements Check.
func (c *UnauthenticatedAccess) Run(ctx context.Context, dev *Device) ([]finding.Finding, error) {
	var out []finding.Finding
	var errs []error
	for i, s := range dev.Services {
		p := c.Probers[s.Identity.Protocol]
		if p == nil {
			continue
		}
		acc, err := p.ProbeOpenAccess(ctx, s.Endpoint, s.Identity)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: %w", c.ID(), s.Endpoint.Addr(), err))
			continue
		}
		if acc == nil {
			continue
		}
		sev := finding.Critical
		lower := strings.ToLower(acc.What)
		if strings.Contains(lower, "coap") || strings.Contains(lower, "ftp") && !strings.Contains(lower, "write") {
			sev = finding.High
		}
		f := base(c, sev, s, acc.What)
		f.Evidence["proof"] = acc.Proof
		for k, v := range acc.Details {
			f.Evidence[k] = v
		}
		f.Remediation = "Require authentication on every interface that gives access to the device or its data (EN 303 645 5.1-1, 5.5-4)."
		dev.note(i, false, true, 0)
		out = append(out, f)
	}
	return out, errors.Join(errs...)
}

// Cleartext flags services that take credentials in clear text. It runs
// after the credential checks and is more severe where a credential was
// accepted or access was open.
type Cleartext struct{}

// ID implements Check.
func (Cleartext) ID() string { return finding.CheckCleartextProtocol }

// Provisions implements Check.
func (Cleartext) Provisions() []string { return []string{"5.5-1"} }

// Intrusive implements Check.
func (Cleartext) Intrusive() bool { return false }

// takesCleartextCredentials reports whether the service takes credentials
// without encryption, and how.
func takesCleartextCredentials(s Service) (string, bool) {
	if s.Endpoint.TLS || s.Identity.TLS {
		return "", false
	}
	switch s.Identity.Protocol {
	case "telnet":
		return "telnet sends the login and everything after it in clear text", true
	case "ftp":
		return "FTP sends USER/PASS in clear text", true
	case "mqtt":
		return "MQTT on a plain port sends CONNECT credentials in clear text", true
	case "http":
		switch s.Identity.Info["auth_scheme"] {
		case "basic":
			return "HTTP Basic authentication without TLS sends the password base64-encoded, i.e. in clear", true
		case "form":
			return "a login form posted over plain HTTP sends the password in clear text", true
		case "digest":
			return "HTTP Digest without TLS exposes the session and allows offline guessing of the password", true
		}
	case "rtsp":
		if s.Identity.Info["auth_scheme"] == "basic" {
			return "RTSP Basic authentication sends the password in clear", true
		}
	case "snmp":
		return "SNMP v1/v2c sends the community string in clear text", true
	}
	return "", false
}

// Run implements Check.
func (c Cleartext) Run(_ context.Context, dev *Device) ([]finding.Finding, error) {
	var out []finding.Finding
	for i, s := range dev.Services {
		why, ok := takesCleartextCredentials(s)
		if !ok {
			continue
		}
		accepted, open := dev.wasAccepted(i)
		sev := finding.Medium
		if accepted {
			sev = finding.High
		}
		f := base(c, sev, s, fmt.Sprintf("%s takes credentials in clear text", s.Identity.Protocol))
		f.Evidence["reason"] = why
		f.Evidence["credential_accepted"] = accepted
		if open {
			f.Evidence["open_access"] = true
		}
		f.Remediation = "Offer the service only over an encrypted channel (TLS, SSH) and disable the clear-text variant (EN 303 645 5.5-1)."
		out = append(out, f)
	}
	return out, nil
}
