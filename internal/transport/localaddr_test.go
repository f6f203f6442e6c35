package transport

import (
	"net"
	"strings"
	"testing"
	"time"

	"mailout/internal/mx"
	"mailout/internal/outcome"
	"mailout/internal/smtpclient"
	"mailout/internal/smtptest"
)

// A worker given its own source address connects from it: the receiving
// server sees the message come from 127.0.0.2 with the worker's HELO name.
func TestDirectSendsFromLocalAddr(t *testing.T) {
	l := newLab(t)
	l.zone.MX("a.test", 10, "mx.a.test").A("mx.a.test", "127.0.0.1")
	s := l.server(t, "127.0.0.1", smtptest.Options{})
	r, err := mx.New(mx.Config{Servers: []string{l.dns.Addr()}, AllowLoopback: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDirect(DirectConfig{Resolver: r, LocalName: "worker2.example.com", Port: l.port,
		LocalAddr: net.ParseIP("127.0.0.2"),
		Timeouts:  smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if res := d.Deliver(t.Context(), directMsg("bob@a.test", "a.test")); res.Class != outcome.Delivered {
		t.Fatalf("%+v", res)
	}
	got := s.Messages()
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	if host, _, _ := net.SplitHostPort(got[0].Client); host != "127.0.0.2" || !strings.EqualFold(got[0].HELO, "worker2.example.com") {
		t.Fatalf("the server saw %s (HELO %q), want 127.0.0.2 and worker2.example.com", got[0].Client, got[0].HELO)
	}
}
