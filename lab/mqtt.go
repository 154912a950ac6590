package lab

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

const (
	defaultMQTTVersion = "mosquitto version 1.6.9"
	mqttConnectWait    = 10 * time.Second
	// mqttSysInterval is long: publishing $SYS reads runtime.MemStats,
	// which stops the world, and a lab may run hundreds of brokers.
	mqttSysInterval = 3600
)

// serveMQTT runs one mochi broker for a device: anonymous when NoAuth,
// otherwise only the service's account, with a few retained topics a real
// device would publish and $SYS/broker/version set to the banner.
func serveMQTT(ln net.Listener, tlsCfg *tls.Config, dev *device, rs RunningService, log *slog.Logger) (func(), error) {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = 64 << 10
	caps.MaximumClients = maxConnsPerService
	caps.MaximumClientWritesPending = 256
	caps.MaximumInflight = 256
	caps.ReceiveMaximum = 64
	s := mqtt.New(&mqtt.Options{
		Capabilities:             caps,
		InlineClient:             true,
		SysTopicResendInterval:   mqttSysInterval,
		Logger:                   slog.New(minLevelHandler{Handler: log.Handler(), min: slog.LevelWarn}),
		ClientNetReadBufferSize:  1024,
		ClientNetWriteBufferSize: 1024,
	})
	version := rs.Banner
	if version == "" {
		version = defaultMQTTVersion
	}
	s.Info.Version = version
	hook := &passwordHook{anonymous: rs.NoAuth, user: []byte(rs.Username), pass: []byte(rs.Password)}
	if err := s.AddHook(hook, nil); err != nil {
		return nil, fmt.Errorf("mqtt auth hook: %w", err)
	}
	var wrapped net.Listener = firstDeadlineListener{Listener: newLimitListener(ln, maxConnsPerService), wait: mqttConnectWait}
	if tlsCfg != nil {
		wrapped = tls.NewListener(wrapped, tlsCfg)
	}
	if err := s.AddListener(listeners.NewNet("lab", wrapped)); err != nil {
		return nil, fmt.Errorf("mqtt listener: %w", err)
	}
	if err := s.Serve(); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("mqtt serve: %w", err)
	}
	for _, t := range retainedTopics(dev) {
		if err := s.Publish(t[0], []byte(t[1]), true, 0); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("mqtt retained %s: %w", t[0], err)
		}
	}
	return func() {
		_ = s.Close()
		done := make(chan struct{})
		go func() { s.Listeners.ClientsWg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}, nil
}

// retainedTopics are what the device publishes (topic, payload).
func retainedTopics(dev *device) [][2]string {
	status := [][2]string{
		{dev.hostname + "/status", "online"},
		{dev.hostname + "/firmware", dev.firmware},
	}
	if dev.kind != "hub" {
		return status
	}
	return append([][2]string{
		{"home/livingroom/temp", "21.5"},
		{"home/livingroom/humidity", "43"},
		{"home/kitchen/light", "off"},
		{"home/frontdoor/lock", "locked"},
		{"home/garage/door", "closed"},
	}, status...)
}

// passwordHook admits only the configured account, or anyone when
// anonymous (mosquitto's allow_anonymous true without a password file).
type passwordHook struct {
	mqtt.HookBase
	anonymous  bool
	user, pass []byte
}

func (h *passwordHook) ID() string { return "lab-password" }

func (h *passwordHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *passwordHook) OnConnectAuthenticate(_ *mqtt.Client, pk packets.Packet) bool {
	if h.anonymous {
		return true
	}
	return subtle.ConstantTimeCompare(pk.Connect.Username, h.user) == 1 &&
		subtle.ConstantTimeCompare(pk.Connect.Password, h.pass) == 1 && len(h.user) > 0
}

func (h *passwordHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// minLevelHandler drops records below min (the broker logs every start at
// Info, which would flood a 500-device lab's log).
type minLevelHandler struct {
	slog.Handler
	min slog.Level
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevelHandler{Handler: h.Handler.WithAttrs(a), min: h.min}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{Handler: h.Handler.WithGroup(name), min: h.min}
}
