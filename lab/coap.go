package lab

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
)

// coapResource is one readable resource of a device.
type coapResource struct {
	path, attrs string
	get         func() string
}

// serveCoAP runs a go-coap server on pc with readable resources and
// /.well-known/core, open to anyone as on most CoAP devices.
func serveCoAP(pc net.PacketConn, dev *device, log *slog.Logger) (func(), error) {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, fmt.Errorf("coap needs a UDP socket, got %T", pc)
	}
	var on atomic.Bool
	on.Store(true)
	resources := []coapResource{
		{"/sensors/temp", `rt="temperature-c";if="sensor";ct=0`, func() string { return "22.4" }},
		{"/sensors/power", `rt="power-w";if="sensor";ct=0`, func() string { return "4.7" }},
		{"/switch", `rt="switch";if="actuator";ct=0`, func() string {
			if on.Load() {
				return "on"
			}
			return "off"
		}},
		{"/device/info", `rt="device-info";ct=50`, func() string {
			return fmt.Sprintf(`{"vendor":%q,"model":%q,"firmware":%q,"serial":%q,"mac":%q}`,
				dev.vendor, dev.model, dev.firmware, dev.serial, dev.mac)
		}},
	}
	var links []string
	for _, r := range resources {
		links = append(links, "<"+r.path+">;"+r.attrs)
	}
	core := strings.Join(links, ",")

	router := mux.NewRouter()
	router.DefaultHandleFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		_ = w.SetResponse(codes.NotFound, message.TextPlain, nil)
	})
	router.HandleFunc("/.well-known/core", func(w mux.ResponseWriter, r *mux.Message) {
		if r.Code() != codes.GET {
			_ = w.SetResponse(codes.MethodNotAllowed, message.TextPlain, nil)
			return
		}
		_ = w.SetResponse(codes.Content, message.AppLinkFormat, bytes.NewReader([]byte(core)))
	})
	for _, res := range resources {
		router.HandleFunc(res.path, func(w mux.ResponseWriter, r *mux.Message) {
			switch {
			case r.Code() == codes.GET:
				ct := message.TextPlain
				if strings.Contains(res.attrs, "ct=50") {
					ct = message.AppJSON
				}
				_ = w.SetResponse(codes.Content, ct, bytes.NewReader([]byte(res.get())))
			case r.Code() == codes.PUT && res.path == "/switch":
				// Unauthenticated control, as on the real thing.
				body, _ := r.ReadBody()
				on.Store(strings.TrimSpace(string(body)) != "off")
				_ = w.SetResponse(codes.Changed, message.TextPlain, nil)
			default:
				_ = w.SetResponse(codes.MethodNotAllowed, message.TextPlain, nil)
			}
		})
	}

	// The default periodic runner sleeps in a goroutine that outlives Stop
	// by seconds; this one ends with the server.
	stopPeriodic := make(chan struct{})
	var periodic sync.WaitGroup
	runner := func(f func(now time.Time) bool) {
		periodic.Go(func() {
			t := time.NewTicker(4 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopPeriodic:
					return
				case now := <-t.C:
					if !f(now) {
						return
					}
				}
			}
		})
	}
	s := udp.NewServer(
		options.WithMux(router),
		options.WithPeriodicRunner(runner),
		options.WithMaxMessageSize(maxDatagram),
		options.WithErrors(func(err error) { log.Debug("coap", "err", err) }),
	)
	l := coapNet.NewUDPConn("udp4", uc)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(l); err != nil {
			log.Debug("coap serve", "err", err)
		}
	}()
	return func() {
		s.Stop()
		// Stop does not close a socket Serve has not picked up yet.
		_ = uc.Close()
		<-done
		close(stopPeriodic)
		periodic.Wait()
	}, nil
}
