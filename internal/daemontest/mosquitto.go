package daemontest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MosquittoOptions configures Mosquitto.
type MosquittoOptions struct {
	Listen
	// Anonymous lets clients connect without a username. Without it the
	// broker has a password file with one account.
	Anonymous bool
	// User and Password are the password file's account (User defaults to
	// "iotcoptest"; an empty Password makes a strong random one). Ignored
	// for an anonymous broker unless User is set.
	User, Password string
	// TLS puts the listener behind TLS with a self-signed certificate.
	TLS bool
}

// Mosquitto runs the real mosquitto broker with one listener.
func Mosquitto(t TB, o MosquittoOptions) Service {
	t.Helper()
	Require(t, "mosquitto=mosquitto", "mosquitto_passwd=mosquitto")
	dir := t.TempDir()
	conventional := 1883
	if o.TLS {
		conventional = 8883
	}
	host, port := o.Listen.at(t, "tcp", conventional)
	s := Service{Host: host, Port: port, Transport: "tcp", TLS: o.TLS, Timeout: 2 * time.Second}
	var conf strings.Builder
	conf.WriteString("listener " + strconv.Itoa(port) + " " + host + "\n")
	conf.WriteString("persistence false\nlog_dest stdout\n")
	if os.Geteuid() == 0 {
		// mosquitto 2 drops root to the "mosquitto" user, which could not
		// read the test's temp files; keep root for the test only.
		conf.WriteString("user root\n")
	}
	conf.WriteString("allow_anonymous " + strconv.FormatBool(o.Anonymous) + "\n")
	if !o.Anonymous || o.User != "" {
		s.Username, s.Password = orDefault(o.User, "iotcoptest"), orDefault(o.Password, StrongPassword())
		pw := filepath.Join(dir, "passwd")
		if out, err := exec.Command("mosquitto_passwd", "-b", "-c", pw, s.Username, s.Password).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
		conf.WriteString("password_file " + pw + "\n")
	}
	if o.TLS {
		cert, key := SelfSigned(t, dir, host)
		conf.WriteString("certfile " + cert + "\nkeyfile " + key + "\n")
	}
	Start(t, "mosquitto", "-c", WriteFile(t, dir, "mosquitto.conf", conf.String(), 0o644))
	WaitTCP(t, host, port)
	return s
}
