package check

import (
	"crypto/sha256"
	"encoding/hex"
)

// Observation kinds: facts a per-device check records so that a fleet-wide
// check can compare devices (the only way to prove a key or password is
// universal is to see it on several units).
const (
	ObservedSSHHostKey   = "ssh-host-key"
	ObservedTLSCert      = "tls-certificate"
	ObservedTLSPublicKey = "tls-public-key"
	ObservedCredential   = "accepted-credential"
)

// Observation is one fact about one service. Value is a fingerprint or a
// hash, never a secret in clear.
type Observation struct {
	Kind      string
	Value     string
	Port      int
	Transport string
	Protocol  string
	// Label is a human description safe to print ("ssh-ed25519 SHA256:…",
	// "root:x***** on telnet").
	Label string
}

// Observe records a fact about service i of the device.
func (d *Device) Observe(i int, kind, value, label string) {
	s := d.Services[i]
	d.mu.Lock()
	defer d.mu.Unlock()
	d.observations = append(d.observations, Observation{
		Kind: kind, Value: value, Port: s.Endpoint.Port, Transport: s.Endpoint.Transport,
		Protocol: s.Identity.Protocol, Label: label,
	})
}

// Observations returns what the checks recorded.
func (d *Device) Observations() []Observation {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Observation(nil), d.observations...)
}

// credentialDigest identifies an accepted credential across devices
// without keeping it in clear in memory longer than the finding does.
func credentialDigest(protocol, user, pass string) string {
	h := sha256.Sum256([]byte(protocol + "\x00" + user + "\x00" + pass))
	return hex.EncodeToString(h[:16])
}
