package transport

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mailout/internal/mx"
	"mailout/internal/outcome"
	"mailout/internal/smtpclient"
)

// Every MX host of a domain refuses connections: the attempt is deferred
// (temporary, not the recipient's fault) with a reason naming the domain
// and how many hosts were tried. The hosts are then marked down: the next
// recipients of that domain are deferred without dialling them again
// until DownFor has passed.
func TestDirectEveryMXDownIsDeferredAndCached(t *testing.T) {
	l := newLab(t)
	// Nothing listens on 127.0.0.2 or 127.0.0.3 at the lab's port.
	l.zone.MX("a.test", 10, "mx1.a.test").MX("a.test", 20, "mx2.a.test").
		A("mx1.a.test", "127.0.0.2").A("mx2.a.test", "127.0.0.3")
	r, err := mx.New(mx.Config{Servers: []string{l.dns.Addr()}, AllowLoopback: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	dials := map[string]int{}
	now := time.Now()
	d, err := NewDirect(DirectConfig{Resolver: r, LocalName: "sender.example.com", Port: l.port, DownFor: time.Minute,
		Timeouts: smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second},
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dials[addr]++
			mu.Unlock()
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range dials {
			n += c
		}
		return n
	}

	res := d.Deliver(t.Context(), directMsg("ana@a.test", "a.test"))
	if res.Class != outcome.ConnectRefused || res.Kind != outcome.KindTemporary {
		t.Fatalf("every MX refused: %+v; want connect-refused, temporary", res.Result)
	}
	if !strings.Contains(res.Text, "no mail server of a.test could be used (2 tried)") {
		t.Errorf("reason %q does not say every MX host of a.test was tried", res.Text)
	}
	if n := total(); n != 2 {
		t.Fatalf("%d dials for the first recipient, want one per MX host (2): %v", n, dials)
	}

	// Within DownFor: deferred the same way, no host dialled again.
	for _, to := range []string{"bo@a.test", "cy@a.test"} {
		res := d.Deliver(t.Context(), directMsg(to, "a.test"))
		if res.Kind != outcome.KindTemporary || res.Class != outcome.ConnectRefused {
			t.Fatalf("%s while the hosts are down: %+v", to, res.Result)
		}
	}
	if n := total(); n != 2 {
		t.Errorf("%d dials after three recipients; the down hosts were dialled again within DownFor", n)
	}

	// Once DownFor has passed, the hosts are tried again.
	mu.Lock()
	now = now.Add(time.Minute + time.Second)
	mu.Unlock()
	d.Deliver(t.Context(), directMsg("dee@a.test", "a.test"))
	if n := total(); n != 4 {
		t.Errorf("%d dials after DownFor, want 4 (both hosts once more)", n)
	}
}
