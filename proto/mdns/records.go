package mdns

import (
	"errors"
	"net/netip"

	"golang.org/x/net/dns/dnsmessage"
)

// ServicesName is the DNS-SD service type enumeration name (RFC 6763
// section 9): a PTR query for it lists the service types a responder
// advertises.
const ServicesName = servicesName

// Bounds on one parsed message.
const (
	maxRecords    = 256 // records kept from one message; the rest are ignored
	maxTXTStrings = 64  // strings kept from one TXT record
)

// Question is one query: a name and a record type.
type Question struct {
	Name string // fully qualified, with the trailing dot
	Type dnsmessage.Type
}

// BuildQuery builds a DNS query message with id for questions, each with
// the QU bit set (ask for a unicast answer, RFC 6762 section 5.4).
func BuildQuery(id uint16, questions ...Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{ID: id})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	for _, q := range questions {
		name, err := dnsmessage.NewName(q.Name)
		if err != nil {
			return nil, err
		}
		if err := b.Question(dnsmessage.Question{Name: name, Type: q.Type, Class: dnsmessage.ClassINET | classUnicastResponse}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// PTR is a pointer record: Owner (a service type, or the enumeration
// name) points at Target (a service instance, or a service type).
type PTR struct{ Owner, Target string }

// SRV says where service instance Owner runs: Target host, Port.
type SRV struct {
	Owner, Target string
	Port          uint16
}

// TXT holds the key=value strings of service instance Owner.
type TXT struct {
	Owner   string
	Strings []string
}

// Addr is an A or AAAA record: host name Owner has address IP.
type Addr struct {
	Owner string
	IP    netip.Addr
}

// Message is what one DNS response carried, from its answer and additional
// sections (authority records are skipped). Names are as sent, with the
// trailing dot; DNS names compare case-insensitively.
type Message struct {
	ID    uint16
	PTRs  []PTR
	SRVs  []SRV
	TXTs  []TXT
	Addrs []Addr
}

// ErrNotResponse is returned by ParseMessage for a DNS message that is not
// a successful standard response (a query, or an error answer).
var ErrNotResponse = errNotResponse

// ParseMessage parses a DNS response, keeping at most 256 PTR, SRV, TXT, A
// and AAAA records (64 strings per TXT). Queries and responses with an
// opcode other than QUERY or an rcode other than NOERROR are
// ErrNotResponse. The caller checks ID.
func ParseMessage(b []byte) (Message, error) {
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil {
		return Message{}, err
	}
	// mDNS responders answer with NOERROR; a unicast DNS server asked
	// about .local answers NXDOMAIN or REFUSED and is not mDNS.
	if !h.Response || h.OpCode != 0 || h.RCode != dnsmessage.RCodeSuccess {
		return Message{}, errNotResponse
	}
	if err := p.SkipAllQuestions(); err != nil {
		return Message{}, err
	}
	m := Message{ID: h.ID}
	kept := 0
	for section := range 3 {
		for {
			var rh dnsmessage.ResourceHeader
			switch section {
			case 0:
				rh, err = p.AnswerHeader()
			case 1:
				rh, err = p.AuthorityHeader()
			default:
				rh, err = p.AdditionalHeader()
			}
			if errors.Is(err, dnsmessage.ErrSectionDone) {
				break
			}
			if err != nil {
				return Message{}, err
			}
			if section == 1 {
				if err := p.SkipAuthority(); err != nil {
					return Message{}, err
				}
				continue
			}
			skip := p.SkipAnswer
			if section == 2 {
				skip = p.SkipAdditional
			}
			if kept == maxRecords {
				if err := skip(); err != nil {
					return Message{}, err
				}
				continue
			}
			owner := rh.Name.String()
			switch rh.Type {
			case dnsmessage.TypePTR:
				r, err := p.PTRResource()
				if err != nil {
					return Message{}, err
				}
				m.PTRs = append(m.PTRs, PTR{Owner: owner, Target: r.PTR.String()})
			case dnsmessage.TypeSRV:
				r, err := p.SRVResource()
				if err != nil {
					return Message{}, err
				}
				m.SRVs = append(m.SRVs, SRV{Owner: owner, Target: r.Target.String(), Port: r.Port})
			case dnsmessage.TypeTXT:
				r, err := p.TXTResource()
				if err != nil {
					return Message{}, err
				}
				m.TXTs = append(m.TXTs, TXT{Owner: owner, Strings: r.TXT[:min(len(r.TXT), maxTXTStrings)]})
			case dnsmessage.TypeA:
				r, err := p.AResource()
				if err != nil {
					return Message{}, err
				}
				m.Addrs = append(m.Addrs, Addr{Owner: owner, IP: netip.AddrFrom4(r.A)})
			case dnsmessage.TypeAAAA:
				r, err := p.AAAAResource()
				if err != nil {
					return Message{}, err
				}
				m.Addrs = append(m.Addrs, Addr{Owner: owner, IP: netip.AddrFrom16(r.AAAA)})
			default:
				if err := skip(); err != nil {
					return Message{}, err
				}
				continue
			}
			kept++
		}
	}
	return m, nil
}
