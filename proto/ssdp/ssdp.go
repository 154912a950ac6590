// Package ssdp identifies UPnP devices by a unicast SSDP M-SEARCH to UDP
// 1900 and, when the answer's LOCATION is on the same host, reads the
// device description for its maker and model. SSDP has no authentication,
// so the package implements only proto.Identifier.
package ssdp

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// Protocol implements proto.Identifier for SSDP/UPnP.
type Protocol struct{}

// New returns the SSDP protocol.
func New() *Protocol { return &Protocol{} }

var _ proto.Identifier = (*Protocol)(nil)

// Name returns "ssdp".
func (*Protocol) Name() string { return "ssdp" }

// Transport returns "udp".
func (*Protocol) Transport() string { return "udp" }

// PortPriority reports the SSDP port 1900.
func (*Protocol) PortPriority(port int) bool { return port == 1900 }

// ServerFirst returns false: devices answer M-SEARCH.
func (*Protocol) ServerFirst() bool { return false }

// Bounds on one identification.
const (
	maxDatagram     = 8192
	maxResponses    = 16
	maxDatagrams    = 64
	maxGrace        = 300 * time.Millisecond
	maxDescription  = 64 << 10
	maxSearchTarget = 1000 // bytes of Info["search_targets"]
)

// mSearch builds a unicast M-SEARCH for every service (UPnP Device
// Architecture 1.1 section 1.3.2: HOST names the target for unicast).
func mSearch(hostPort string) []byte { return SearchRequest(hostPort, "ssdp:all", 1) }

// SearchRequest builds an M-SEARCH for search target st ("ssdp:all",
// "upnp:rootdevice"). hostPort is "239.255.255.250:1900" for a multicast
// search or the target's address for a unicast one; mx is the number of
// seconds responders may spread their answers over (UDA 1.1 section 1.3.2).
func SearchRequest(hostPort, st string, mx int) []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\n" +
		"HOST: " + hostPort + "\r\n" +
		"MAN: \"ssdp:discover\"\r\n" +
		"MX: " + strconv.Itoa(mx) + "\r\n" +
		"ST: " + st + "\r\n" +
		"USER-AGENT: iotcop UPnP/1.1 iotcop/1\r\n\r\n")
}

// Identify sends a unicast M-SEARCH (ssdp:all) and parses the answers:
// SERVER gives product and version, LOCATION the device description, which
// is fetched (64 KiB cap, no redirects) only when it is on the target host.
//
// Info keys: "server", "location", "usn", "search_targets" (comma-separated
// ST values), and from the description "friendly_name", "manufacturer",
// "manufacturer_url", "model_name", "model_number", "model_description",
// "serial_number", "udn", "device_type", "firmware_version",
// "software_version"; "description_error" says why a
// LOCATION was not read (another host, HTTP error, bad XML).
func (p *Protocol) Identify(ctx context.Context, conn net.Conn, banner []byte, ep proto.Endpoint) (*proto.Identity, error) {
	resps, first, err := search(ctx, conn, ep)
	if err != nil {
		return nil, fmt.Errorf("ssdp identify %s: %v: %w", ep.Addr(), err, proto.ErrNotThisProtocol)
	}
	id := &proto.Identity{Protocol: "ssdp", Banner: proto.Printable(first)}
	var targets []string
	for _, r := range resps {
		for h, key := range map[string]string{"server": "server", "location": "location", "usn": "usn"} {
			if v := r.Headers[h]; v != "" && id.Info[key] == "" {
				id.Set(key, proto.Printable([]byte(v)))
			}
		}
		if st := r.Headers["st"]; st != "" && !slices.Contains(targets, st) {
			targets = append(targets, st)
		}
	}
	if len(targets) > 0 {
		id.Set("search_targets", joinCapped(targets, maxSearchTarget))
	}
	id.Product, id.Version = productFromServer(id.Info["server"])
	if loc := firstLocation(resps); loc != "" {
		if d, err := FetchDescription(ctx, ep, loc); err == nil {
			d.apply(id)
		} else {
			id.Set("description_error", proto.Printable([]byte(err.Error())))
		}
	}
	return id, nil
}

// search sends M-SEARCH and collects valid answers until the wait ends,
// maxResponses arrived, or a short grace passed after the first.
func search(ctx context.Context, conn net.Conn, ep proto.Endpoint) ([]Response, []byte, error) {
	deadline := time.Now().Add(ep.IOTimeout())
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetWriteDeadline(deadline)
	if _, err := conn.Write(mSearch(ep.Addr())); err != nil {
		return nil, nil, fmt.Errorf("send M-SEARCH: %w", err)
	}
	var out []Response
	var first []byte
	buf := make([]byte, maxDatagram)
	var readErr error
	for range maxDatagrams {
		if len(out) == maxResponses {
			break
		}
		_ = conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			readErr = err
			break
		}
		r, err := ParseResponse(buf[:n])
		if err != nil || !r.IsSearchAnswer() {
			continue
		}
		if len(out) == 0 {
			first = append([]byte(nil), buf[:min(n, proto.MaxBanner)]...)
			if g := time.Now().Add(min(maxGrace, ep.IOTimeout())); g.Before(deadline) {
				deadline = g
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		if readErr != nil {
			return nil, nil, fmt.Errorf("no SSDP answer: %w", readErr)
		}
		return nil, nil, fmt.Errorf("no SSDP answer")
	}
	return out, first, nil
}

func firstLocation(resps []Response) string {
	for _, r := range resps {
		if l := r.Headers["location"]; l != "" {
			return l
		}
	}
	return ""
}

func joinCapped(items []string, max int) string {
	var sb strings.Builder
	for _, it := range items {
		it = proto.Printable([]byte(it))
		if sb.Len()+len(it)+1 > max {
			break
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(it)
	}
	return sb.String()
}

// Description is the part of a UPnP device description iotcop reads.
type Description struct {
	Device struct {
		DeviceType       string `xml:"deviceType"`
		FriendlyName     string `xml:"friendlyName"`
		Manufacturer     string `xml:"manufacturer"`
		ManufacturerURL  string `xml:"manufacturerURL"`
		ModelDescription string `xml:"modelDescription"`
		ModelName        string `xml:"modelName"`
		ModelNumber      string `xml:"modelNumber"`
		SerialNumber     string `xml:"serialNumber"`
		UDN              string `xml:"UDN"`
		// Not in the UPnP schema, but many vendors add them.
		FirmwareVersion string `xml:"firmwareVersion"`
		SoftwareVersion string `xml:"softwareVersion"`
	} `xml:"device"`
}

// apply copies the description's facts into the identity.
func (d Description) apply(id *proto.Identity) {
	dev := d.Device
	for key, v := range map[string]string{
		"device_type":       dev.DeviceType,
		"friendly_name":     dev.FriendlyName,
		"manufacturer":      dev.Manufacturer,
		"manufacturer_url":  dev.ManufacturerURL,
		"model_description": dev.ModelDescription,
		"model_name":        dev.ModelName,
		"model_number":      dev.ModelNumber,
		"serial_number":     dev.SerialNumber,
		"udn":               dev.UDN,
		"firmware_version":  dev.FirmwareVersion,
		"software_version":  dev.SoftwareVersion,
	} {
		if v = strings.TrimSpace(v); v != "" {
			id.Set(key, proto.Printable([]byte(v[:min(len(v), 256)])))
		}
	}
	if m := strings.TrimSpace(dev.Manufacturer); m != "" {
		id.Vendor = strings.ToLower(proto.Printable([]byte(m[:min(len(m), 64)])))
	}
}

// sameHost reports whether rawURL is an http URL on the endpoint's host.
// Descriptions elsewhere are never fetched: LOCATION is attacker-controlled
// and must not steer the scanner to other addresses.
func sameHost(rawURL string, ep proto.Endpoint) (*url.URL, bool) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" || u.User != nil {
		return nil, false
	}
	a, b := net.ParseIP(u.Hostname()), net.ParseIP(ep.Host)
	if a == nil || b == nil || !a.Equal(b) {
		return nil, false
	}
	return u, true
}

// FetchDescription GETs the device description at loc when it is an http
// URL on ep.Host (ep.Port is not used), bounded in time (ep.IOTimeout) and
// size (64 KiB), without following redirects, and parses it.
func FetchDescription(ctx context.Context, ep proto.Endpoint, loc string) (Description, error) {
	u, ok := sameHost(loc, ep)
	if !ok {
		return Description{}, fmt.Errorf("LOCATION %q is not an http URL on %s; not fetched", trim(loc), ep.Host)
	}
	dial := ep.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	client := &http.Client{
		Timeout: ep.IOTimeout(),
		Transport: &http.Transport{
			DialContext:            dial,
			Proxy:                  nil,
			DisableKeepAlives:      true,
			ResponseHeaderTimeout:  ep.IOTimeout(),
			MaxResponseHeaderBytes: 16 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Description{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Description{}, fmt.Errorf("fetch device description: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Description{}, fmt.Errorf("fetch device description: HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDescription))
	if err != nil {
		return Description{}, fmt.Errorf("read device description: %w", err)
	}
	return ParseDescription(body)
}

// ParseDescription parses a UPnP device description document. Callers
// bound its size.
func ParseDescription(body []byte) (Description, error) {
	var d Description
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	dec.Strict = false
	// Descriptions may declare ISO-8859-1; the fields we read are ASCII in
	// practice, so read them as they are rather than fail.
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	if err := dec.Decode(&d); err != nil {
		return Description{}, fmt.Errorf("parse device description: %w", err)
	}
	return d, nil
}
