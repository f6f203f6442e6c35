package fleet_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"mailout/internal/mx"
	"mailout/internal/peertest"
	"mailout/internal/queue"
	"mailout/internal/scheduler"
	"mailout/internal/smtpclient"
	"mailout/internal/store"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// census counts, at the receivers, the SMTP sessions open at once: all
// receivers together and each one (one receiver per domain), and when
// each message arrived.
type census struct {
	mu       sync.Mutex
	open     int
	maxOpen  int
	byHost   map[string]int
	maxHost  map[string]int
	arrivals arrivals
}

// begin and end count one session of host. A session ends when the
// server reads the client's QUIT, or when the connection closes: the
// client gives its slot back after the reply to QUIT, so that is the
// moment the receiver knows the session is over.
func (c *census) begin(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open++
	c.byHost[host]++
	c.maxOpen = max(c.maxOpen, c.open)
	c.maxHost[host] = max(c.maxHost[host], c.byHost[host])
}

func (c *census) end(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	c.byHost[host]--
}

// countedConn is a receiver's side of one connection.
type countedConn struct {
	net.Conn
	c    *census
	host string
	once sync.Once
}

func (k *countedConn) done() { k.once.Do(func() { k.c.end(k.host) }) }

func (k *countedConn) Read(b []byte) (int, error) {
	n, err := k.Conn.Read(b)
	if bytes.Contains(bytes.ToUpper(b[:n]), []byte("QUIT\r\n")) || err != nil {
		k.done()
	}
	return n, err
}

func (k *countedConn) Close() error {
	k.done()
	return k.Conn.Close()
}

type countedListener struct {
	net.Listener
	c    *census
	host string
}

func (l *countedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.c.begin(l.host)
	return &countedConn{Conn: conn, c: l.c, host: l.host}, nil
}

// sink is a go-smtp backend that accepts every message, taking slow for
// the reply to its data (a slow receiver makes sessions overlap).
type sink struct {
	c    *census
	slow time.Duration
}

func (s sink) NewSession(*smtp.Conn) (smtp.Session, error) { return sinkSession(s), nil }

type sinkSession sink

func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.c.arrivals.add(time.Now())
	if s.slow > 0 {
		time.Sleep(s.slow) // the receiver's own slowness, not a wait for a condition
	}
	return nil
}
func (sinkSession) Reset()        {}
func (sinkSession) Logout() error { return nil }

// receivers starts one counting SMTP server per domain, on 127.0.0.11,
// .12, … and one port, and returns the resolver that points each domain
// at its server.
func receivers(t *testing.T, c *census, slow time.Duration, domains ...string) (resolver, int) {
	t.Helper()
	l0, err := net.Listen("tcp", "127.0.0.11:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l0.Addr().(*net.TCPAddr).Port
	r := resolver{}
	for i, d := range domains {
		ip := fmt.Sprintf("127.0.0.%d", 11+i)
		ln := l0
		if i > 0 {
			if ln, err = net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port))); err != nil {
				t.Fatal(err)
			}
		}
		srv := smtp.NewServer(sink{c, slow})
		srv.Domain = "mx." + d
		srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
		go srv.Serve(&countedListener{Listener: ln, c: c, host: ip})
		t.Cleanup(func() { srv.Close() })
		r[d] = netip.MustParseAddr(ip)
	}
	return r, port
}

type resolver map[string]netip.Addr

func (r resolver) Lookup(_ context.Context, domain string) ([]mx.Host, error) {
	return []mx.Host{{Name: "mx." + domain, Addrs: []netip.Addr{r[domain]}}}, nil
}

// sendWithThreeWorkers has three workers, each with its own scheduler,
// transport, pool and owner, send one campaign of n recipients over two
// domains with profile p, to receivers that take slow for each message,
// and returns what the receivers counted.
func sendWithThreeWorkers(t *testing.T, p throttle.Profile, n int, slow time.Duration) *census {
	t.Helper()
	pg := peertest.Postgres(t)
	dsn := pg.Schema(t)
	domains := []string{"a.example", "b.example"}
	cen := &census{byHost: map[string]int{}, maxHost: map[string]int{}}
	res, port := receivers(t, cen, slow, domains...)

	st := open(t, dsn)
	c := &store.Campaign{Name: "fleet", Status: store.CampaignRunning, Route: "direct", MaxAge: time.Hour,
		RetryMin: time.Minute, Message: store.Message{Template: []byte("From: a@example.com\n\nhi\n")}}
	i := 0
	err := st.ImportCampaign(t.Context(), c, func() (*store.NewRecipient, error) {
		if i == n {
			return nil, nil
		}
		d := domains[i%len(domains)]
		e := fmt.Sprintf("r%d@%s", i, d)
		i++
		return &store.NewRecipient{Line: i + 1, Email: e, Domain: d, Key: e, Fields: map[string]string{}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	render := func(d *store.Delivery, _ *bytes.Buffer) (*transport.Message, error) {
		id := fmt.Sprintf("%d@example.com", d.ID)
		data := "From: a@example.com\r\nTo: " + d.Email + "\r\nMessage-ID: <" + id + ">\r\n\r\nhi\r\n"
		return &transport.Message{DeliveryID: d.ID, CampaignID: d.CampaignID, From: "a@example.com", To: d.Email,
			Domain: d.Domain, MessageID: id, Data: []byte(data), Attempt: d.Attempts}, nil
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for w := range 3 {
		owner := fmt.Sprintf("worker%d", w)
		// Each worker has its own pool, for its store and its Gate.
		g, db := worker(t, dsn, c.ID, p, owner, nil)
		tr, err := transport.NewDirect(transport.DirectConfig{Resolver: res, LocalName: "sender.example.com",
			Port: port, MaxIdle: -1, MaxPerHost: 10,
			Timeouts: smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		cfg := scheduler.Config{Store: db, Campaign: c, Transport: tr, Render: render, Profile: p,
			Clock: throttle.RealClock(), Policy: queue.Policy{RetryMin: c.RetryMin, MaxAge: c.MaxAge},
			Owner: owner, ClaimBatch: 16, Gate: g}
		wg.Go(func() {
			_, errs[w] = scheduler.Run(t.Context(), cfg)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(cen.arrivals.at); got != n {
		t.Fatalf("%d messages arrived, want %d", got, n)
	}
	return cen
}

// Counted at the receivers, the sessions of three workers open at once
// never exceed the profile's connections, nor those to one domain its
// per-domain connections; each worker alone would open 3 at once, 2 to
// each domain.
func TestFleetConnectionsCountedAtTheReceivers(t *testing.T) {
	p := throttle.Profile{Name: "fleet", Connections: 3, DomainConnections: 2}
	cen := sendWithThreeWorkers(t, p, 60, 100*time.Millisecond)
	cen.mu.Lock()
	defer cen.mu.Unlock()
	if cen.maxOpen > 3 {
		t.Errorf("the receivers saw %d sessions at once; the profile allows 3 for the fleet", cen.maxOpen)
	}
	for host, m := range cen.maxHost {
		if m > 2 {
			t.Errorf("%s saw %d sessions at once; the profile allows 2 per domain", host, m)
		}
	}
}

// Counted at the receivers, the messages of three workers arriving in any
// second never exceed the profile's rate (with one chunk, 4 messages, per
// worker of tolerance); each worker alone would send 40 a second.
func TestFleetRateCountedAtTheReceivers(t *testing.T) {
	p := throttle.Profile{Name: "fleet", Connections: 3, Rate: 40}
	cen := sendWithThreeWorkers(t, p, 120, 0)
	const limit = 40 + 3*4
	if most := cen.arrivals.most(time.Second); most > limit {
		t.Errorf("%d messages arrived within one second; the profile allows 40 (tolerance %d)", most, limit)
	}
}
