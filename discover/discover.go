// Package discover finds devices on the local network the way phones and
// media players do: an SSDP M-SEARCH (with each device's UPnP description)
// and an mDNS/DNS-SD browse, both multicast on one interface. It names each
// responding address — maker, model, serial, firmware version, host names,
// advertised services — so a scan can label devices and try their vendor's
// default credentials first.
//
// Only the answers' source addresses become devices; descriptions are
// fetched only from private or loopback addresses (target.InScope), from the
// device that answered, bounded in size and time.
package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/iotcop/iotcop/proto/mdns"
	"github.com/iotcop/iotcop/proto/ssdp"
)

// Options configures one discovery.
type Options struct {
	// Interface is the network interface to query on ("eth0"). Empty lets
	// the kernel choose by its multicast route.
	Interface string
	// Wait is how long answers are collected (default 3s).
	Wait time.Duration
	// FetchTimeout bounds each UPnP description fetch (default 3s).
	FetchTimeout time.Duration
	// NoSSDP and NoMDNS turn one method off.
	NoSSDP, NoMDNS bool
}

// DefaultWait is how long Run collects answers when Options.Wait is zero.
const DefaultWait = 3 * time.Second

// Sources a Device was heard on.
const (
	SourceMDNS = "mdns"
	SourceSSDP = "ssdp"
)

// Device is one address that answered, with everything it told about
// itself. Empty fields were not announced.
type Device struct {
	Address netip.Addr `json:"address"`
	// Sources lists how the device was found: "mdns", "ssdp" (sorted).
	Sources []string `json:"sources"`
	// Names are the device's mDNS host names ("cam-1a2b.local").
	Names []string `json:"names,omitempty"`
	// Services are the DNS-SD service instances it advertises.
	Services []Service `json:"services,omitempty"`

	// From the UPnP device description.
	FriendlyName    string `json:"friendly_name,omitempty"`
	Manufacturer    string `json:"manufacturer,omitempty"`
	ManufacturerURL string `json:"manufacturer_url,omitempty"`
	Model           string `json:"model,omitempty"`
	ModelNumber     string `json:"model_number,omitempty"`
	Serial          string `json:"serial,omitempty"`
	// FirmwareVersion is the description's firmwareVersion, else its
	// softwareVersion (vendor extensions; UPnP itself has no such field).
	FirmwareVersion string `json:"firmware_version,omitempty"`
	DeviceType      string `json:"device_type,omitempty"`
	UDN             string `json:"udn,omitempty"`
	// Server is the SSDP SERVER header ("Linux/5.10 UPnP/1.1 MiniUPnPd/2.3.1").
	Server string `json:"server,omitempty"`
	// Locations are the description URLs the device announced (at most 4).
	Locations []string `json:"locations,omitempty"`
	// DescriptionError says why a description was not read, if it was not.
	DescriptionError string `json:"description_error,omitempty"`
}

// Service is one DNS-SD service instance.
type Service struct {
	Instance string   `json:"instance"`       // "Living Room Camera"
	Type     string   `json:"type"`           // "_http._tcp"
	Host     string   `json:"host,omitempty"` // SRV target ("cam-1a2b.local")
	Port     int      `json:"port,omitempty"`
	TXT      []string `json:"txt,omitempty"` // "key=value" strings as sent
}

// Where queries go. Tests replace it to stay on loopback; Run uses the
// standard groups.
type endpoints struct {
	ssdp, mdns netip.AddrPort
	// mdnsListen binds UDP 5353 and joins the mDNS group too, to hear
	// responders that answer only by multicast.
	mdnsListen bool
	// mdnsSourcePort is the source port mDNS answers must come from (RFC
	// 6762 section 6: 5353); 0 accepts any.
	mdnsSourcePort uint16
}

var (
	ssdpGroup = netip.MustParseAddrPort("239.255.255.250:1900")
	mdnsGroup = netip.MustParseAddrPort("224.0.0.251:5353")
)

// Run queries the network on opts.Interface and returns the devices that
// answered within opts.Wait, sorted by address, with their UPnP
// descriptions read. It returns an error only when it could not query at
// all; answers that cannot be parsed are ignored.
func Run(ctx context.Context, opts Options) ([]Device, error) {
	return run(ctx, opts, endpoints{ssdp: ssdpGroup, mdns: mdnsGroup, mdnsListen: true, mdnsSourcePort: 5353})
}

// Bounds on one discovery.
const (
	maxDatagram      = 9000 // RFC 6762 section 17; SSDP answers are smaller
	maxDatagrams     = 4096 // read per socket
	maxQueryMessages = 64   // mDNS follow-up messages sent
	maxQuestions     = 12   // per follow-up message
	maxFetches       = 16   // description fetches at once
	retryAfter       = time.Second
	tick             = 250 * time.Millisecond
)

func run(ctx context.Context, opts Options, ep endpoints) ([]Device, error) {
	if opts.NoSSDP && opts.NoMDNS {
		return []Device{}, nil
	}
	wait := opts.Wait
	if wait <= 0 {
		wait = DefaultWait
	}
	var ifi *net.Interface
	if opts.Interface != "" {
		var err error
		if ifi, err = net.InterfaceByName(opts.Interface); err != nil {
			return nil, fmt.Errorf("discovery on %s: %w", opts.Interface, err)
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	end, _ := waitCtx.Deadline()

	c := newCollector()
	var socks []*socket
	defer func() {
		for _, s := range socks {
			s.close()
		}
	}()
	var ssdpSock, mdnsSock *socket
	if !opts.NoSSDP {
		s, err := openSender(ifi, 2) // UDA 1.1 section 1.1.2: TTL 2
		if err != nil {
			return nil, fmt.Errorf("discovery: SSDP socket: %w", err)
		}
		socks, ssdpSock = append(socks, s), s
	}
	if !opts.NoMDNS {
		s, err := openSender(ifi, 255) // RFC 6762 section 11
		if err != nil {
			return nil, fmt.Errorf("discovery: mDNS socket: %w", err)
		}
		socks, mdnsSock = append(socks, s), s
	}

	var wg sync.WaitGroup
	read := func(s *socket, handle func(src netip.AddrPort, b []byte)) {
		_ = s.pc.SetReadDeadline(end)
		wg.Go(func() { s.read(ifi, handle) })
	}
	if ssdpSock != nil {
		read(ssdpSock, func(src netip.AddrPort, b []byte) {
			if r, err := ssdp.ParseResponse(b); err == nil {
				c.addSSDP(src.Addr(), r)
			}
		})
	}
	if mdnsSock != nil {
		handle := func(src netip.AddrPort, b []byte) {
			if ep.mdnsSourcePort != 0 && src.Port() != ep.mdnsSourcePort {
				return
			}
			if m, err := mdns.ParseMessage(b); err == nil {
				c.addMDNS(src.Addr(), m)
			}
		}
		read(mdnsSock, handle)
		if ep.mdnsListen {
			// Best effort: another responder may hold the port without
			// SO_REUSEADDR; legacy unicast answers still arrive.
			if l, err := openListener(waitCtx, ifi, ep.mdns); err == nil {
				socks = append(socks, l)
				read(l, handle)
			}
		}
	}

	err := query(waitCtx, c, ssdpSock, mdnsSock, ep)
	// query returns when the wait is over, the caller gave up, or sending
	// failed: stop the readers now in all three cases.
	for _, s := range socks {
		_ = s.pc.SetReadDeadline(time.Now())
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	devices := c.devices()
	fetchDescriptions(ctx, devices, opts.FetchTimeout)
	return devices, nil
}

// query sends the searches, repeats them once after a second (UDP gets
// lost), and sends mDNS follow-up questions for what answers leave
// unresolved, until ctx ends. Only a failure of the very first send is an
// error.
func query(ctx context.Context, c *collector, ssdpSock, mdnsSock *socket, ep endpoints) error {
	searches := func() error {
		var errs []error
		if ssdpSock != nil {
			host := ep.ssdp.String()
			for _, st := range []string{"ssdp:all", "upnp:rootdevice"} {
				if err := ssdpSock.send(ssdp.SearchRequest(host, st, 1), ep.ssdp); err != nil {
					errs = append(errs, fmt.Errorf("send SSDP M-SEARCH to %s: %w", ep.ssdp, err))
				}
			}
		}
		if mdnsSock != nil {
			q, err := mdns.BuildQuery(c.newID(), mdns.Question{Name: mdns.ServicesName, Type: dnsmessage.TypePTR})
			if err == nil {
				err = mdnsSock.send(q, ep.mdns)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("send mDNS query to %s: %w", ep.mdns, err))
			}
		}
		return errors.Join(errs...)
	}
	if err := searches(); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	start := time.Now()
	repeated := false
	sent := 0
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if !repeated && now.Sub(start) >= retryAfter {
				repeated = true
				_ = searches()
			}
			if mdnsSock == nil {
				continue
			}
			qs := c.pending(now)
			for len(qs) > 0 && sent < maxQueryMessages {
				batch := qs[:min(len(qs), maxQuestions)]
				qs = qs[len(batch):]
				if b, err := mdns.BuildQuery(c.newID(), batch...); err == nil {
					_ = mdnsSock.send(b, ep.mdns)
					sent++
				}
			}
		}
	}
}
