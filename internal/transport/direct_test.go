package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"mailout/internal/mx"
	"mailout/internal/mx/mxtest"
	"mailout/internal/outcome"
	"mailout/internal/smtpclient"
	"mailout/internal/smtptest"
)

// lab is a set of mail servers on 127.0.0.x, all on one port, and a DNS
// server that points test domains at them.
type lab struct {
	port int
	zone *mxtest.Zone
	dns  *mxtest.Server
}

func newLab(t *testing.T) *lab {
	t.Helper()
	// A free port on 127.0.0.1 is very likely free on the other 127.0.0.x.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	z := mxtest.NewZone()
	return &lab{port: port, zone: z, dns: mxtest.Start(t, z)}
}

func (l *lab) server(t *testing.T, ip string, opt smtptest.Options) *smtptest.Server {
	t.Helper()
	opt.Addr = net.JoinHostPort(ip, strconv.Itoa(l.port))
	return smtptest.Start(t, opt)
}

func (l *lab) direct(t *testing.T, allowLoopback bool) *Direct {
	t.Helper()
	r, err := mx.New(mx.Config{Servers: []string{l.dns.Addr()}, AllowLoopback: allowLoopback, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDirect(DirectConfig{Resolver: r, LocalName: "sender.example.com", Port: l.port,
		Timeouts: smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func directMsg(to, domain string) *Message {
	m := msg(to)
	m.Domain = domain
	return m
}

func TestDirectFallsBackToNextMX(t *testing.T) {
	l := newLab(t)
	// mx1 (preference 10) has nothing listening: connection refused.
	l.zone.MX("a.test", 10, "mx1.a.test").MX("a.test", 20, "mx2.a.test").
		A("mx1.a.test", "127.0.0.2").A("mx2.a.test", "127.0.0.3")
	s2 := l.server(t, "127.0.0.3", smtptest.Options{})
	d := l.direct(t, true)
	res := d.Deliver(t.Context(), directMsg("bob@a.test", "a.test"))
	if res.Class != outcome.Delivered || res.Via != "direct:mx2.a.test" {
		t.Fatalf("%+v via %s; want delivered via mx2", res.Result, res.Via)
	}
	if len(s2.Messages()) != 1 {
		t.Fatal("mx2 did not get the message")
	}
}

func TestDirectImplicitMXNullMXAndNXDomain(t *testing.T) {
	l := newLab(t)
	l.zone.A("implicit.test", "127.0.0.4").NullMX("null.test").NXDomain("gone.test")
	s := l.server(t, "127.0.0.4", smtptest.Options{})
	d := l.direct(t, true)
	if res := d.Deliver(t.Context(), directMsg("a@implicit.test", "implicit.test")); res.Class != outcome.Delivered {
		t.Fatalf("implicit MX: %+v", res)
	}
	if len(s.Messages()) != 1 {
		t.Fatal("the implicit MX did not get the message")
	}
	res := d.Deliver(t.Context(), directMsg("a@null.test", "null.test"))
	if res.Class != outcome.NoMailServer || res.Kind != outcome.KindPermanent {
		t.Fatalf("null MX: %+v, want no-mail-server, permanent", res)
	}
	res = d.Deliver(t.Context(), directMsg("a@gone.test", "gone.test"))
	if res.Class != outcome.DNSNXDomain || res.Kind != outcome.KindPermanent || res.LocalFault {
		t.Fatalf("NXDOMAIN: %+v, want dns-nxdomain, permanent, not local", res)
	}
}

func TestDirectRefusesLoopbackMXWithoutLabSetting(t *testing.T) {
	l := newLab(t)
	l.zone.MX("loop.test", 10, "mx.loop.test").A("mx.loop.test", "127.0.0.5")
	s := l.server(t, "127.0.0.5", smtptest.Options{})
	d := l.direct(t, false)
	res := d.Deliver(t.Context(), directMsg("a@loop.test", "loop.test"))
	if res.Class != outcome.ProhibitedDestination || res.Kind != outcome.KindPermanent {
		t.Fatalf("%+v, want prohibited-destination", res)
	}
	if s.Connections() != 0 {
		t.Fatal("a prohibited destination was connected to")
	}
}

func TestDirectReusesConnectionsPerMX(t *testing.T) {
	l := newLab(t)
	l.zone.MX("reuse.test", 10, "mx.reuse.test").A("mx.reuse.test", "127.0.0.6")
	s := l.server(t, "127.0.0.6", smtptest.Options{})
	d := l.direct(t, true)
	const n = 25
	for i := range n {
		if res := d.Deliver(t.Context(), directMsg(fmt.Sprintf("u%d@reuse.test", i), "reuse.test")); res.Class != outcome.Delivered {
			t.Fatalf("message %d: %+v", i, res)
		}
	}
	if c := s.Connections(); c >= n {
		t.Fatalf("%d connections for %d messages", c, n)
	}
	if got := len(s.Messages()); got != n {
		t.Fatalf("%d messages arrived, want %d", got, n)
	}
}

func TestDirectTLSHandshakeFailureFallsBackToPlaintext(t *testing.T) {
	l := newLab(t)
	l.zone.MX("oldtls.test", 10, "mx.oldtls.test").A("mx.oldtls.test", "127.0.0.7")
	broken := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return nil, errors.New("no certificate configured")
	}}
	s := l.server(t, "127.0.0.7", smtptest.Options{TLS: broken})
	d := l.direct(t, true)
	res := d.Deliver(t.Context(), directMsg("a@oldtls.test", "oldtls.test"))
	if res.Class != outcome.Delivered {
		t.Fatalf("%+v; want delivered without TLS after the handshake failed", res)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || msgs[0].TLS {
		t.Fatalf("messages %+v; want one, in plaintext", msgs)
	}
}

func TestDirectGreetingRefusalTriesNextMX(t *testing.T) {
	l := newLab(t)
	l.zone.MX("busy.test", 10, "mx1.busy.test").MX("busy.test", 20, "mx2.busy.test").
		A("mx1.busy.test", "127.0.0.8").A("mx2.busy.test", "127.0.0.9")
	l.server(t, "127.0.0.8", smtptest.Options{Faults: func(e smtptest.Event) *smtptest.Fault {
		if e.Step == "connect" {
			return &smtptest.Fault{Code: 421, Enhanced: "4.3.2", Text: "Service not available, closing channel"}
		}
		return nil
	}})
	s2 := l.server(t, "127.0.0.9", smtptest.Options{})
	d := l.direct(t, true)
	res := d.Deliver(t.Context(), directMsg("a@busy.test", "busy.test"))
	if res.Class != outcome.Delivered || len(s2.Messages()) != 1 {
		t.Fatalf("%+v; want delivered by mx2 after mx1's 421 greeting", res)
	}
}

func TestDirectCapsSessionsPerMXHostAcrossDomains(t *testing.T) {
	l := newLab(t)
	// Three domains hosted by one provider's MX.
	for _, d := range []string{"one.test", "two.test", "three.test"} {
		l.zone.MX(d, 10, "mx.provider.test")
	}
	l.zone.A("mx.provider.test", "127.0.0.10")
	s := l.server(t, "127.0.0.10", smtptest.Options{})
	r, err := mx.New(mx.Config{Servers: []string{l.dns.Addr()}, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDirect(DirectConfig{Resolver: r, LocalName: "sender.example.com", Port: l.port, MaxPerHost: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dom := []string{"one.test", "two.test", "three.test"}[i%3]
			if res := d.Deliver(t.Context(), directMsg(fmt.Sprintf("u%d@%s", i, dom), dom)); res.Class != outcome.Delivered {
				errs <- fmt.Sprintf("%d: %+v", i, res.Result)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := len(s.Messages()); got != n {
		t.Fatalf("%d messages arrived, want %d", got, n)
	}
	if c := s.Connections(); c > 2 {
		t.Fatalf("%d connections to one MX host; the cap is 2", c)
	}
}

// A host that accepts TCP and never greets, or greets with a refusal, is
// skipped for the next MX within the same attempt.
func TestDirectBadGreetingsTryNextMX(t *testing.T) {
	tests := []struct {
		name  string
		fault smtptest.Fault
	}{
		{"banner stall", smtptest.Fault{Stall: 3 * time.Second}},
		{"554 greeting", smtptest.Fault{Code: 554, Enhanced: "5.7.1", Text: "Service unavailable; client host blocked"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t)
			dom := fmt.Sprintf("greet%d.test", i)
			bad, good := fmt.Sprintf("127.0.0.%d", 11+2*i), fmt.Sprintf("127.0.0.%d", 12+2*i)
			l.zone.MX(dom, 10, "mx1."+dom).MX(dom, 20, "mx2."+dom).A("mx1."+dom, bad).A("mx2."+dom, good)
			f := tt.fault
			l.server(t, bad, smtptest.Options{Faults: func(e smtptest.Event) *smtptest.Fault {
				if e.Step == "connect" {
					return &f
				}
				return nil
			}})
			s2 := l.server(t, good, smtptest.Options{})
			r, err := mx.New(mx.Config{Servers: []string{l.dns.Addr()}, AllowLoopback: true})
			if err != nil {
				t.Fatal(err)
			}
			d, err := NewDirect(DirectConfig{Resolver: r, LocalName: "sender.example.com", Port: l.port,
				Timeouts: smtpclient.Timeouts{Connect: time.Second, Greeting: 300 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			res := d.Deliver(t.Context(), directMsg("a@"+dom, dom))
			if res.Class != outcome.Delivered || res.Via != "direct:mx2."+dom || len(s2.Messages()) != 1 {
				t.Fatalf("%+v via %s; want delivered by mx2", res.Result, res.Via)
			}
		})
	}
}

// Close ends the idle sessions with QUIT and the sessions in use as soon
// as their message is done, instead of keeping them open for a message
// that will never come.
func TestDirectCloseEndsSessionsInUse(t *testing.T) {
	reached, release := make(chan struct{}), make(chan struct{})
	srv := startPipe(t, 1)
	srv.atDot = func() {
		close(reached)
		<-release
	}
	_, port, _ := net.SplitHostPort(srv.Addr)
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	ns := mxtest.Start(t, mxtest.NewZone().MX("a.test", 10, "mx.a.test").A("mx.a.test", "127.0.0.1"))
	r, err := mx.New(mx.Config{Servers: []string{ns.Addr()}, AllowLoopback: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDirect(DirectConfig{Resolver: r, LocalName: "sender.example.com", Port: p,
		Timeouts: smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second, DataTerm: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Result, 1)
	go func() { done <- d.Deliver(t.Context(), directMsg("bob@a.test", "a.test")) }()
	<-reached // the message is on the wire, its session in use
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	if res := <-done; res.Class != outcome.Delivered {
		t.Fatalf("%+v, want delivered", res.Result)
	}
	srv.mu.Lock()
	quits := srv.quits
	srv.mu.Unlock()
	if quits != 1 {
		t.Fatalf("%d sessions ended with QUIT after Close, want the one that was in use", quits)
	}
}
