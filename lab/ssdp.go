package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"html"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	upnpServerHeader = "Linux/3.10 UPnP/1.0 MiniUPnPd/1.9"
	upnpDescPath     = "/rootDesc.xml"
)

// ssdpRequest is a parsed SSDP M-SEARCH.
type ssdpRequest struct {
	man, st string
}

// parseMSearch parses an SSDP M-SEARCH datagram; ok is false for anything
// else.
func parseMSearch(b []byte) (ssdpRequest, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 512), maxDatagram)
	if !sc.Scan() {
		return ssdpRequest{}, false
	}
	first := strings.Fields(sc.Text())
	if len(first) != 3 || !strings.EqualFold(first[0], "M-SEARCH") || first[1] != "*" || !strings.HasPrefix(strings.ToUpper(first[2]), "HTTP/1.") {
		return ssdpRequest{}, false
	}
	var r ssdpRequest
	for n := 0; sc.Scan() && n < 32; n++ {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.ToUpper(strings.TrimSpace(k)) {
		case "MAN":
			r.man = strings.Trim(strings.TrimSpace(v), `"`)
		case "ST":
			r.st = strings.TrimSpace(v)
		}
	}
	return r, r.man == "ssdp:discover" && r.st != ""
}

// deviceType is the UPnP device type a device announces.
func deviceType(dev *device) string {
	if dev.kind == "router" {
		return "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	}
	if dev.kind == "tv" {
		return "urn:schemas-upnp-org:device:MediaRenderer:1"
	}
	return "urn:schemas-upnp-org:device:Basic:1"
}

// ssdpResponder answers unicast M-SEARCH requests whose search target
// matches the device, pointing to the description on descPort.
func ssdpResponder(dev *device, descPort int) func([]byte, net.Addr) []byte {
	location := "http://" + net.JoinHostPort(dev.addr, strconv.Itoa(descPort)) + upnpDescPath
	return func(req []byte, _ net.Addr) []byte {
		r, ok := parseMSearch(req)
		if !ok {
			return nil
		}
		var st, usn string
		switch r.st {
		case "ssdp:all", "upnp:rootdevice":
			st, usn = "upnp:rootdevice", "uuid:"+dev.uuid+"::upnp:rootdevice"
		case "uuid:" + dev.uuid:
			st, usn = r.st, r.st
		case deviceType(dev):
			st, usn = r.st, "uuid:"+dev.uuid+"::"+r.st
		default:
			return nil
		}
		return []byte("HTTP/1.1 200 OK\r\n" +
			"CACHE-CONTROL: max-age=120\r\n" +
			"DATE: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n" +
			"EXT:\r\n" +
			"LOCATION: " + location + "\r\n" +
			"SERVER: " + upnpServerHeader + "\r\n" +
			"ST: " + st + "\r\n" +
			"USN: " + usn + "\r\n" +
			"BOOTID.UPNP.ORG: 1\r\n" +
			"\r\n")
	}
}

// upnpDescriptionHandler serves the device description XML.
func upnpDescriptionHandler(dev *device) http.Handler {
	e := html.EscapeString
	vendorHost := strings.ToLower(firstLetters(dev.vendor, 32))
	body := fmt.Sprintf(`<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>%s</deviceType>
<friendlyName>%s %s</friendlyName>
<manufacturer>%s</manufacturer>
<manufacturerURL>http://www.%s.example/</manufacturerURL>
<modelDescription>%s %s</modelDescription>
<modelName>%s</modelName>
<modelNumber>%s</modelNumber>
<modelURL>http://www.%s.example/products/</modelURL>
<serialNumber>%s</serialNumber>
<UDN>uuid:%s</UDN>
<presentationURL>http://%s/</presentationURL>
</device>
</root>
`, deviceType(dev), e(dev.vendor), e(dev.model), e(dev.vendor), vendorHost, e(dev.vendor), e(dev.model),
		e(dev.model), e(dev.firmware), vendorHost, e(dev.serial), dev.uuid, dev.addr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", upnpServerHeader)
		if r.URL.Path != upnpDescPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		_, _ = w.Write([]byte(body))
	})
}
