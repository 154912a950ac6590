package lab

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// startService starts one service of dev and returns what now runs (a UPnP
// service is an SSDP socket plus its description web server).
func (l *Lab) startService(dev *device, rs RunningService, keys *keyStore) ([]RunningService, error) {
	if rs.RandomPassword {
		if rs.Protocol == "snmp" {
			rs.Community = randomPassword()
		} else {
			rs.Password = randomPassword()
		}
	}
	addr := net.JoinHostPort(dev.addr, strconv.Itoa(rs.Port))
	log := l.log.With("device", dev.name, "protocol", rs.Protocol, "addr", addr)
	if rs.Transport == "udp" {
		pc, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return nil, err
		}
		switch rs.Protocol {
		case "snmp":
			agent := newSNMPAgent(dev, rs.Community)
			s := serveUDP(pc, log, agent.handle)
			l.addCloser(s.close)
		case "coap":
			stop, err := serveCoAP(pc, dev, log)
			if err != nil {
				_ = pc.Close()
				return nil, err
			}
			l.addCloser(stop)
		case "upnp":
			descAddr := net.JoinHostPort(dev.addr, strconv.Itoa(rs.DescriptionPort))
			ln, err := net.Listen("tcp4", descAddr)
			if err != nil {
				_ = pc.Close()
				return nil, fmt.Errorf("upnp description on %s: %w", descAddr, err)
			}
			s := serveUDP(pc, log, ssdpResponder(dev, rs.DescriptionPort))
			l.addCloser(s.close)
			hs := serveHTTP(ln, upnpDescriptionHandler(dev), nil, log)
			l.addCloser(hs)
			// The description is public by design: not an open admin page.
			desc := RunningService{ServiceSpec: ServiceSpec{Protocol: "http", Port: rs.DescriptionPort,
				Banner: upnpServerHeader}, Transport: "tcp"}
			return []RunningService{rs, desc}, nil
		default:
			_ = pc.Close()
			return nil, fmt.Errorf("no udp server for %s", rs.Protocol)
		}
		return []RunningService{rs}, nil
	}

	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return nil, err
	}
	if l.wrap != nil {
		ln = l.wrap(ln, rs)
	}
	switch rs.Protocol {
	case "telnet":
		s := serveTCP(ln, log, telnetHandler(dev, rs))
		l.addCloser(s.close)
	case "ssh":
		cfg, err := sshServerConfig(dev, rs, keys)
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		s := serveTCP(ln, log, sshHandler(dev, cfg, log))
		l.addCloser(s.close)
	case "ftp":
		s := serveTCP(ln, log, ftpHandler(dev, rs, log))
		l.addCloser(s.close)
	case "rtsp":
		s := serveTCP(ln, log, rtspHandler(dev, rs))
		l.addCloser(s.close)
	case "adb":
		s := serveTCP(ln, log, adbHandler(dev))
		l.addCloser(s.close)
	case "http", "https":
		var tlsCfg *tls.Config
		if rs.TLS {
			if tlsCfg, err = keys.tlsConfig(dev); err != nil {
				_ = ln.Close()
				return nil, err
			}
		}
		h, err := httpHandler(dev, rs)
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		l.addCloser(serveHTTP(ln, h, tlsCfg, log))
	case "mqtt", "mqtts":
		var tlsCfg *tls.Config
		if rs.TLS {
			if tlsCfg, err = keys.tlsConfig(dev); err != nil {
				_ = ln.Close()
				return nil, err
			}
		}
		stop, err := serveMQTT(ln, tlsCfg, dev, rs, log)
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		l.addCloser(stop)
	default:
		_ = ln.Close()
		return nil, fmt.Errorf("no tcp server for %s", rs.Protocol)
	}
	return []RunningService{rs}, nil
}

// keyStore hands out SSH host keys (shared per vendor/model when asked) and
// TLS certificates for one lab.
type keyStore struct {
	mu     sync.Mutex
	shared map[string]ssh.Signer
}

func newKeyStore() *keyStore { return &keyStore{shared: map[string]ssh.Signer{}} }

// hostKey returns a fresh Ed25519 host key, or the model's shared one.
func (k *keyStore) hostKey(dev *device, shared bool) (ssh.Signer, error) {
	key := dev.vendor + "\x00" + dev.model
	if shared {
		k.mu.Lock()
		defer k.mu.Unlock()
		if s, ok := k.shared[key]; ok {
			return s, nil
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	if shared {
		k.shared[key] = s
	}
	return s, nil
}

// tlsConfig returns a TLS 1.2+ server config with a fresh self-signed
// ECDSA certificate naming the device.
func (k *keyStore) tlsConfig(dev *device) (*tls.Config, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("tls serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: dev.hostname, Organization: []string{dev.vendor}, SerialNumber: dev.serial},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{dev.hostname},
	}
	if ip, err := netip.ParseAddr(dev.addr); err == nil {
		tmpl.IPAddresses = []net.IP{ip.AsSlice()}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("self-sign certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
	}, nil
}
