package mx

import (
	"fmt"
	"net/netip"
	"strings"
)

// Failure is the kind of a failed resolution. Its string values are
// stable: the doctor prints them as finding codes, and the outcome
// classifier reads them from (*Error).Kind to choose a class.
type Failure string

// The failure kinds.
const (
	// FailureTimeout: no usable answer reached us from any DNS server (no
	// reply within the timeout, or the network could not reach the server).
	// Temporary; points at our network (a firewall or an antivirus blocking
	// port 53, a wrong --dns address).
	FailureTimeout Failure = "timeout"
	// FailureRefused: a DNS server refused: either the REFUSED rcode (the
	// server does not serve us, e.g. recursion not allowed) or an ICMP
	// "port unreachable" (nothing listens on that port). Temporary.
	FailureRefused Failure = "refused"
	// FailureServFail: the DNS server answered SERVFAIL (or another error
	// rcode, or an unusable answer such as a CNAME loop): usually the
	// domain's own DNS servers are broken. Temporary, and never a
	// reason to fall back to the A record.
	FailureServFail Failure = "servfail"
	// FailureNXDomain: the name does not exist (RFC 1035 §4.1.1 rcode 3).
	// Permanent.
	FailureNXDomain Failure = "nxdomain"
	// FailureNoData: the name exists but has no usable records: a recipient
	// domain with neither MX nor A/AAAA (no mail server, RFC 5321 §5.1),
	// or a host name without A/AAAA. Permanent.
	FailureNoData Failure = "nodata"
	// FailureMXNoAddress: the domain has MX records but none of their hosts
	// has an address (no A/AAAA, or the host name does not exist).
	// Temporary (the receiver may fix its DNS); kept
	// apart from nodata, which is permanent.
	FailureMXNoAddress Failure = "mx-no-address"
	// FailureNullMX: the domain publishes a null MX (RFC 7505): it accepts no
	// mail. Permanent.
	FailureNullMX Failure = "null-mx"
	// FailureProhibited: every destination resolved to an address we refuse
	// to send to (see IsProhibited). Permanent.
	FailureProhibited Failure = "prohibited"
)

// Error is a failed resolution. It is for people first: Error() says which
// server, which question and what happened, e.g.
// "DNS server 9.9.9.9:53 did not answer (timeout after 5s) for MX example.com".
type Error struct {
	// Domain is the name given to Lookup or LookupHost, without the
	// trailing dot.
	Domain string
	// Server is the DNS server ("IP:PORT") whose answer (or silence)
	// decided Kind; "" when the error does not come from one server
	// (null MX, prohibited, no usable host).
	Server string
	// Kind is one of the Failure constants above.
	Kind Failure
	// Err is the underlying error (network error, rcode), may be nil.
	Err error

	// QType and Name are the question that failed ("MX", "A", "AAAA")
	// and its name, without the trailing dot. For a failure on an MX
	// host, Name is the host and Domain the recipient domain.
	QType string
	Name  string
	// Host is set when the MX records resolved but their hosts were not
	// usable (no address, or prohibited addresses).
	Host string
	// Addr is the refused address of a prohibited destination.
	Addr netip.Addr

	msg   string   // the sentence for people
	tried []string // what the other servers said, when several were tried
	temp  bool
}

// Error returns a sentence for people.
func (e *Error) Error() string {
	s := e.msg
	if s == "" {
		s = fmt.Sprintf("DNS lookup of %s failed: %s", e.Domain, e.Kind)
	}
	if len(e.tried) > 0 {
		s += " (also tried: " + strings.Join(e.tried, "; ") + ")"
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether a later retry may succeed: true for timeout,
// refused, servfail and mx-no-address; false for nxdomain, nodata, null-mx
// and prohibited.
func (e *Error) Temporary() bool { return e.temp }

// IsProhibited reports whether a is an address mailout refuses to deliver
// to directly (it would invite loops, abuse of internal relays and of
// cloud metadata services; KumoMTA calls this prohibited_hosts).
//
// Always prohibited: unspecified (0.0.0.0, ::) and "this network"
// 0.0.0.0/8, link-local 169.254.0.0/16 (which holds the cloud metadata
// service 169.254.169.254) and fe80::/10, multicast, the limited broadcast
// 255.255.255.255 and the reserved 240.0.0.0/4, and the AWS IPv6 metadata
// address fd00:ec2::254.
//
// Prohibited unless allowLoopback (the lab setting --allow-loopback-mx):
// loopback 127.0.0.0/8 and ::1, and the private ranges 10.0.0.0/8,
// 172.16.0.0/12, 192.168.0.0/16 (RFC 1918), 100.64.0.0/10 (RFC 6598) and
// fc00::/7 (RFC 4193). No public mail server lives there; a lab (network
// namespaces, containers) usually does, hence one setting for both.
//
// IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) are judged as IPv4.
func IsProhibited(a netip.Addr, allowLoopback bool) bool {
	if !a.IsValid() {
		return true
	}
	a = a.Unmap()
	a = a.WithZone("")
	if a == awsMetadataV6() {
		return true
	}
	if a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsMulticast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return true
	}
	if a.Is4() {
		b := a.As4()
		if b[0] == 0 || b[0] >= 240 { // 0.0.0.0/8 (RFC 1122 §3.2.1.3), 240.0.0.0/4 and broadcast
			return true
		}
	}
	if allowLoopback {
		return false
	}
	if a.IsLoopback() || a.IsPrivate() {
		return true
	}
	return isCGNAT(a)
}

// awsMetadataV6 returns fd00:ec2::254, the IPv6 address of the EC2 instance
// metadata service.
func awsMetadataV6() netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfd, 2: 0x0e, 3: 0xc2, 14: 0x02, 15: 0x54})
}

// isCGNAT reports whether a is in the RFC 6598 shared address space
// 100.64.0.0/10.
func isCGNAT(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	return b[0] == 100 && b[1]&0xc0 == 64
}

// prohibitedReason names the class of a prohibited address for people.
func prohibitedReason(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	switch {
	case a == awsMetadataV6() || a == netip.MustParseAddr("169.254.169.254"):
		return "a cloud metadata address"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsUnspecified() || (a.Is4() && a.As4()[0] == 0):
		return "an unspecified address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case a.IsMulticast():
		return "a multicast address"
	case a.IsPrivate() || isCGNAT(a):
		return "a private address"
	default:
		return "a reserved address"
	}
}
