package mdns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// zone is what the fake responder advertises: PTR owner -> targets.
var zone = map[string][]string{
	servicesName:        {"_http._tcp.local.", "_hap._tcp.local."},
	"_http._tcp.local.": {"Camera Web._http._tcp.local."},
	"_hap._tcp.local.":  {"Smart Plug 1A2B._hap._tcp.local."},
}

// answerFor builds a response to query q following mode.
func answerFor(q []byte, mode string) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return nil
	}
	id := h.ID
	if mode == "wrong id" {
		id ^= 0xffff
	}
	rcode := dnsmessage.RCodeSuccess
	if mode == "dns server" {
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: true, Authoritative: true, RCode: rcode})
	_ = b.StartAnswers()
	for _, question := range qs {
		for _, target := range zone[question.Name.String()] {
			_ = b.PTRResource(dnsmessage.ResourceHeader{Name: question.Name, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET, TTL: 120},
				dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(target)})
		}
	}
	_ = b.StartAdditionals()
	_ = b.SRVResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("Camera Web._http._tcp.local."), Type: dnsmessage.TypeSRV, Class: dnsmessage.ClassINET, TTL: 120},
		dnsmessage.SRVResource{Port: 80, Target: dnsmessage.MustNewName("cam-1a2b.local.")})
	_ = b.AResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("cam-1a2b.local."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 120},
		dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

func responder(t *testing.T, mode string) proto.Endpoint {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(daemontest.Addr(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 9000)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			switch mode {
			case "silent":
				continue
			case "garbage":
				_, _ = pc.WriteTo([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"), from)
				continue
			case "empty":
				var p dnsmessage.Parser
				h, err := p.Start(buf[:n])
				if err != nil {
					continue
				}
				eb := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true})
				out, _ := eb.Finish()
				_, _ = pc.WriteTo(out, from)
				continue
			}
			if out := answerFor(buf[:n], mode); out != nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	a := pc.LocalAddr().(*net.UDPAddr)
	return proto.Endpoint{Host: a.IP.String(), Port: a.Port, Transport: "udp", Timeout: 600 * time.Millisecond}
}

func TestResponders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode         string
		wantIdentify error
		wantInfo     map[string]string
	}{
		{mode: "services", wantInfo: map[string]string{
			"services":      "_http._tcp.local,_hap._tcp.local",
			"service_count": "2",
			"instances":     "Camera Web._http._tcp.local,Smart Plug 1A2B._hap._tcp.local",
			"hostnames":     "cam-1a2b.local",
		}},
		{mode: "empty", wantInfo: map[string]string{"service_count": "0"}},
		{mode: "wrong id", wantIdentify: proto.ErrNotThisProtocol},
		{mode: "dns server", wantIdentify: proto.ErrNotThisProtocol},
		{mode: "silent", wantIdentify: proto.ErrNotThisProtocol},
		{mode: "garbage", wantIdentify: proto.ErrNotThisProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			ep := responder(t, tt.mode)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := ep.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			id, err := New().Identify(ctx, conn, nil, ep)
			if !errors.Is(err, tt.wantIdentify) {
				t.Fatalf("Identify err = %v, want %v", err, tt.wantIdentify)
			}
			if err != nil {
				return
			}
			if id.Protocol != "mdns" {
				t.Errorf("protocol %q", id.Protocol)
			}
			for k, want := range tt.wantInfo {
				if got := id.Info[k]; got != want {
					t.Errorf("Info[%s] = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestBuildQuery(t *testing.T) {
	q, err := buildQuery(0x1234, []string{servicesName})
	if err != nil {
		t.Fatal(err)
	}
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := p.AllQuestions()
	if err != nil {
		t.Fatal(err)
	}
	if h.ID != 0x1234 || h.Response || len(qs) != 1 || qs[0].Type != dnsmessage.TypePTR ||
		!strings.EqualFold(qs[0].Name.String(), servicesName) || qs[0].Class&classUnicastResponse == 0 {
		t.Errorf("query header %+v questions %+v", h, qs)
	}
}

// FuzzParseReply checks the reply reader on arbitrary bytes.
func FuzzParseReply(f *testing.F) {
	q, err := buildQuery(7, []string{servicesName})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(answerFor(q, "services"))
	f.Add(q)
	f.Add([]byte{0, 7, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 0x0c})
	f.Add(fullAnswer(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := ParseMessage(data); err == nil {
			if n := len(m.PTRs) + len(m.SRVs) + len(m.TXTs) + len(m.Addrs); n > maxRecords {
				t.Fatalf("%d records kept", n)
			}
			for _, txt := range m.TXTs {
				if len(txt.Strings) > maxTXTStrings {
					t.Fatalf("%d TXT strings", len(txt.Strings))
				}
			}
		}
		r, err := parseReply(data, 7)
		if err != nil {
			return
		}
		for _, targets := range r.ptrs {
			if len(targets) > maxNames {
				t.Fatalf("%d targets", len(targets))
			}
		}
		if len(r.hosts) > maxNames {
			t.Fatalf("%d hosts", len(r.hosts))
		}
	})
}

// fullAnswer builds a response carrying every record type ParseMessage
// reads, plus an authority record and an unread HINFO-like record; extra
// adds more PTR answers.
func fullAnswer(extra []string) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0, Response: true, Authoritative: true})
	_ = b.StartAnswers()
	inst := dnsmessage.MustNewName("Cam._http._tcp.local.")
	_ = b.PTRResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("_http._tcp.local."), Class: dnsmessage.ClassINET}, dnsmessage.PTRResource{PTR: inst})
	for _, e := range extra {
		_ = b.PTRResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("_http._tcp.local."), Class: dnsmessage.ClassINET}, dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(e)})
	}
	_ = b.StartAuthorities()
	_ = b.AResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("auth.local."), Class: dnsmessage.ClassINET}, dnsmessage.AResource{A: [4]byte{10, 0, 0, 9}})
	_ = b.StartAdditionals()
	_ = b.SRVResource(dnsmessage.ResourceHeader{Name: inst, Class: dnsmessage.ClassINET}, dnsmessage.SRVResource{Port: 8080, Target: dnsmessage.MustNewName("cam.local.")})
	_ = b.TXTResource(dnsmessage.ResourceHeader{Name: inst, Class: dnsmessage.ClassINET}, dnsmessage.TXTResource{TXT: []string{"path=/", "model=X1"}})
	_ = b.AResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("cam.local."), Class: dnsmessage.ClassINET}, dnsmessage.AResource{A: [4]byte{10, 0, 0, 5}})
	_ = b.AAAAResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("cam.local."), Class: dnsmessage.ClassINET}, dnsmessage.AAAAResource{AAAA: [16]byte{0: 0xfe, 1: 0x80, 15: 5}})
	_ = b.MXResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("cam.local."), Class: dnsmessage.ClassINET}, dnsmessage.MXResource{MX: dnsmessage.MustNewName("mx.local.")})
	out, err := b.Finish()
	if err != nil {
		panic(err)
	}
	return out
}

func TestParseMessage(t *testing.T) {
	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprintf("i%d._http._tcp.local.", i)
	}
	query, _ := BuildQuery(1, Question{Name: ServicesName, Type: dnsmessage.TypePTR})
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
		check   func(t *testing.T, m Message)
	}{
		{name: "every record type", in: fullAnswer(nil), check: func(t *testing.T, m Message) {
			want := Message{
				PTRs:  []PTR{{"_http._tcp.local.", "Cam._http._tcp.local."}},
				SRVs:  []SRV{{"Cam._http._tcp.local.", "cam.local.", 8080}},
				TXTs:  []TXT{{"Cam._http._tcp.local.", []string{"path=/", "model=X1"}}},
				Addrs: []Addr{{"cam.local.", netip.MustParseAddr("10.0.0.5")}, {"cam.local.", netip.MustParseAddr("fe80::5")}},
			}
			if diff := cmp.Diff(want, m, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Error(diff)
			}
		}},
		{name: "records capped", in: fullAnswer(many), check: func(t *testing.T, m Message) {
			if n := len(m.PTRs) + len(m.SRVs) + len(m.TXTs) + len(m.Addrs); n != maxRecords {
				t.Errorf("%d records kept, want %d", n, maxRecords)
			}
		}},
		{name: "a query is not a response", in: query, wantErr: true},
		{name: "truncated", in: fullAnswer(nil)[:40], wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMessage(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}
