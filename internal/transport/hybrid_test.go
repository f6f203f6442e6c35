package transport

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailout/internal/mx"
	"mailout/internal/mx/mxtest"
	"mailout/internal/outcome"
	"mailout/internal/smtpclient"
)

// pipeServer is an SMTP server on 127.0.0.1 that shows whether messages
// come pipelined (RFC 2920 §3.1): it answers the final "." of a message
// only once the client has sent the next message's MAIL with it, except
// for a group's last message (every perConn-th of a connection), so a
// client that waits for each reply before the next MAIL gets no answer
// until its timeout. It counts the transactions of each connection.
type pipeServer struct {
	Addr    string
	perConn int

	// atDot, when set, is called before a final "." is answered.
	atDot func()

	mu        sync.Mutex
	conns     []int // transactions per connection
	pipelined int   // MAILs that came before the reply to the previous "."
	quits     int   // sessions ended with QUIT
}

func startPipe(t *testing.T, perConn int) *pipeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &pipeServer{Addr: ln.Addr().String(), perConn: perConn}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, 0)
			n := len(s.conns) - 1
			s.mu.Unlock()
			go s.serve(conn, n)
		}
	}()
	return s
}

func (s *pipeServer) serve(conn net.Conn, n int) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	say := func(r string) { _, _ = conn.Write([]byte(r + "\r\n")) }
	say("220 pipe.test ESMTP")
	line := ""
	next := func() bool {
		l, err := br.ReadString('\n')
		line = strings.ToUpper(strings.TrimRight(l, "\r\n"))
		return err == nil
	}
	for next() {
	again:
		switch {
		case strings.HasPrefix(line, "EHLO"):
			say("250-pipe.test\r\n250-PIPELINING\r\n250 8BITMIME")
		case strings.HasPrefix(line, "MAIL"), strings.HasPrefix(line, "RCPT"), strings.HasPrefix(line, "RSET"):
			say("250 2.0.0 Ok")
		case line == "DATA":
			say("354 go ahead")
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			s.mu.Lock()
			s.conns[n]++
			last := s.conns[n]%s.perConn == 0
			s.mu.Unlock()
			if s.atDot != nil {
				s.atDot()
			}
			if last {
				say("250 2.0.0 Ok: queued")
				continue
			}
			// Not the group's last: the next MAIL must come first.
			if !next() {
				return
			}
			if strings.HasPrefix(line, "MAIL") {
				s.mu.Lock()
				s.pipelined++
				s.mu.Unlock()
			}
			say("250 2.0.0 Ok: queued")
			goto again
		case line == "QUIT":
			s.mu.Lock()
			s.quits++
			s.mu.Unlock()
			say("221 Bye")
			return
		default:
			say("502 5.5.1 not here")
		}
	}
}

// counts returns the transactions of each connection and how many MAILs
// came pipelined behind a message's final ".".
func (s *pipeServer) counts() ([]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.conns...), s.pipelined
}

// A hybrid route takes groups of messages like the others: those of a
// domain that goes direct go pipelined on one session of its MX, those of
// a domain the direct way cannot reach from here (its DNS lookups are
// refused) go pipelined on one session of the fallback relay, and each
// message is reported once, with the way it went. A later group of the
// moved domain goes straight to the relay.
func TestHybridDeliverBatchPipelinesBothWays(t *testing.T) {
	const each = 4
	mxSrv := startPipe(t, each)
	relaySrv := startPipe(t, each)
	_, port, _ := net.SplitHostPort(mxSrv.Addr)
	z := mxtest.NewZone().MX("direct.test", 10, "mx.direct.test").A("mx.direct.test", "127.0.0.1").Refused("blocked.test")
	ns := mxtest.Start(t, z)
	res, err := mx.New(mx.Config{Servers: []string{ns.Addr()}, AllowLoopback: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	timeouts := smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second, DataTerm: 5 * time.Second}
	direct, err := NewDirect(DirectConfig{Resolver: res, LocalName: "sender.example.com", Port: p, Timeouts: timeouts})
	if err != nil {
		t.Fatal(err)
	}
	relay := newRelay(t, nil, 1, account(t, "smtp+insecure://"+relaySrv.Addr))
	h := &Hybrid{Direct: direct, Relay: relay}
	t.Cleanup(func() { h.Close() })
	b, ok := Transport(h).(Batcher)
	if !ok {
		t.Fatal("the hybrid route takes no groups: the scheduler would send its messages one by one")
	}

	var msgs []*Message
	for i := range each {
		msgs = append(msgs, directMsg(fmt.Sprintf("d%d@direct.test", i), "direct.test"),
			directMsg(fmt.Sprintf("b%d@blocked.test", i), "blocked.test"))
	}
	rep := reports(t)
	out := b.DeliverBatch(t.Context(), msgs, rep.done)
	rep.check(out)
	for i, r := range out {
		want := "direct:mx.direct.test"
		if msgs[i].Domain == "blocked.test" {
			want = "relay:127.0.0.1 (direct failed: " + string(outcome.DNSUnreachable) + ")"
		}
		if r.Class != outcome.Delivered || r.Via != want {
			t.Errorf("%s: %s %q via %q, want delivered via %q", msgs[i].To, r.Class, r.Text, r.Via, want)
		}
	}
	for name, s := range map[string]*pipeServer{"MX": mxSrv, "relay": relaySrv} {
		conns, pipelined := s.counts()
		if len(conns) != 1 || conns[0] != each || pipelined != each-1 {
			t.Errorf("%s: transactions per connection %v, %d of them pipelined; want one connection of %d, %d pipelined",
				name, conns, pipelined, each, each-1)
		}
	}

	// The moved domain's next group goes by the relay without asking the
	// direct way again, pipelined on the relay's pooled session.
	queries := ns.QueriesFor("blocked.test", dns.TypeMX)
	msgs = msgs[:0]
	for i := range each {
		msgs = append(msgs, directMsg(fmt.Sprintf("later%d@blocked.test", i), "blocked.test"))
	}
	for i, r := range b.DeliverBatch(t.Context(), msgs, nil) {
		if r.Class != outcome.Delivered || r.Via != "relay:127.0.0.1" {
			t.Errorf("%s: %s via %q, want delivered via the relay", msgs[i].To, r.Class, r.Via)
		}
	}
	if got := ns.QueriesFor("blocked.test", dns.TypeMX); got != queries {
		t.Errorf("%d more MX queries for the moved domain, want none", got-queries)
	}
	if conns, pipelined := relaySrv.counts(); len(conns) != 1 || conns[0] != 2*each || pipelined != 2*(each-1) {
		t.Errorf("relay after the second group: transactions per connection %v, %d pipelined; want one connection of %d, %d pipelined",
			conns, pipelined, 2*each, 2*(each-1))
	}
}
