package peertest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
)

// Keys of the DNS peer in the env file.
const (
	keyDNS          = "MAILOUT_PEER_DNS"
	keyDNSMXHost    = "MAILOUT_PEER_DNS_MX_HOST"
	keyDNSMXDomains = "MAILOUT_PEER_DNS_MX_DOMAINS"
	keyDNSFallback  = "MAILOUT_PEER_DNS_FALLBACK_DOMAIN"
	keyDNSImplicit  = "MAILOUT_PEER_DNS_IMPLICIT_DOMAIN"
	keyDNSNullMX    = "MAILOUT_PEER_DNS_NULLMX_DOMAIN"
	keyDNSNXDomain  = "MAILOUT_PEER_DNS_NXDOMAIN"
)

// DNSPeer is the real DNS server (dnsmasq) that scripts/test-setup.sh runs
// on loopback for the direct route: the user's --dns server of a lab.
//
//	mailout --dns Addr ──MX?──> dnsmasq ──"MX 10 MXHost"──> mailout
//	mailout ──SMTP (--mx-port 2525)──> MXHost = 127.0.0.1 = the Postfix peer's Plain port
//
// It answers only for the names below (and never forwards a question):
// every domain it names is one the Postfix peer accepts without AUTH on
// its Plain port, which therefore acts as their MX.
type DNSPeer struct {
	Addr   string // "127.0.0.1:PORT", UDP and TCP
	MXHost string // the MX host name; A 127.0.0.1, no AAAA
	// MXDomains have "MX 10 MXHost".
	MXDomains []string
	// FallbackDomain has MX 5 on a host at 127.0.0.2, where nothing
	// listens, and MX 10 MXHost: delivery falls back to the second MX.
	FallbackDomain string
	// ImplicitDomain has no MX but an A record 127.0.0.1 (RFC 5321 §5.1
	// implicit MX).
	ImplicitDomain string
	// NullMXDomain publishes "MX 0 ." (RFC 7505).
	NullMXDomain string
	// NXDomain does not exist (NXDOMAIN).
	NXDomain string
}

// DNS returns the DNS peer. When it is not running the test is skipped, or
// fails when RequirePeers is true. It takes no lock: the peer only answers
// questions. A test that delivers through it to Postfix also calls Postfix.
func DNS(t testing.TB) *DNSPeer {
	t.Helper()
	p, err := loadDNS()
	if err == nil {
		err = p.probe(t.Context())
	}
	if err != nil {
		if RequirePeers() {
			t.Fatalf("DNS peer required (%s=1) but unavailable: %v; %s", requireVar, err, setupHint)
		}
		t.Skipf("DNS peer unavailable: %v; %s", err, setupHint)
	}
	return p
}

func loadDNS() (*DNSPeer, error) {
	file := mustEnvFile()
	p := &DNSPeer{
		Addr:           lookupEnv(file, keyDNS),
		MXHost:         lookupEnv(file, keyDNSMXHost),
		FallbackDomain: lookupEnv(file, keyDNSFallback),
		ImplicitDomain: lookupEnv(file, keyDNSImplicit),
		NullMXDomain:   lookupEnv(file, keyDNSNullMX),
		NXDomain:       lookupEnv(file, keyDNSNXDomain),
	}
	for _, d := range strings.Split(lookupEnv(file, keyDNSMXDomains), ",") {
		if d = strings.TrimSpace(d); d != "" {
			p.MXDomains = append(p.MXDomains, d)
		}
	}
	for key, v := range map[string]string{
		keyDNS: p.Addr, keyDNSMXHost: p.MXHost, keyDNSFallback: p.FallbackDomain,
		keyDNSImplicit: p.ImplicitDomain, keyDNSNullMX: p.NullMXDomain, keyDNSNXDomain: p.NXDomain,
	} {
		if v == "" {
			return nil, fmt.Errorf("%s is not set (env file %s)", key, envFilePath())
		}
	}
	if len(p.MXDomains) == 0 {
		return nil, fmt.Errorf("%s is not set (env file %s)", keyDNSMXDomains, envFilePath())
	}
	return p, nil
}

// Resolver returns a resolver that asks only the peer (the standard
// library's own DNS client, not mailout's).
func (p *DNSPeer) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, p.Addr)
	}}
}

// probe asks the peer for the first MX domain's MX records and checks
// that they name MXHost.
func (p *DNSPeer) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	mxs, err := p.Resolver().LookupMX(ctx, p.MXDomains[0])
	if err != nil {
		return fmt.Errorf("asking %s for the MX of %s: %w", p.Addr, p.MXDomains[0], err)
	}
	for _, mx := range mxs {
		if strings.EqualFold(strings.TrimSuffix(mx.Host, "."), p.MXHost) {
			return nil
		}
	}
	return fmt.Errorf("%s: MX of %s is %v, want %s", p.Addr, p.MXDomains[0], mxs, p.MXHost)
}
