package smtpclient

import (
	"context"
	"errors"
	"testing"
	"time"
)

func tx(rcpt, body string) Tx {
	return Tx{From: "a@x.org", Rcpts: []string{rcpt}, Body: []byte(body)}
}

// The final "." of one message and the next transaction's commands go out
// together: the script reads them all before it answers the ".", which
// would stall (and time out) if the client waited for that reply first.
// A refused recipient, a refused body and a 421 each stay with their own
// transaction; after the 421 nothing more is attempted.
func TestSendManyPipelinesAcrossMessages(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m1@y.com>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 go ahead
C: one
C: .
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m2@y.com>
C: DATA
S: 250 2.0.0 Ok: queued as 1
S: 250 2.1.0 Ok
S: 550 5.1.1 No such user
S: 554 5.5.1 No valid recipients
C: RSET
S: 250 2.0.0 Ok
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m3@y.com>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 go ahead
C: three
C: .
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m4@y.com>
C: DATA
S: 552 5.3.4 Message too big
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 go ahead
C: four
C: .
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m5@y.com>
C: DATA
S: 250 2.0.0 Ok: queued as 4
S: 421 4.3.2 Shutting down
X: close`)
	c := mustDial(t, s, nil)
	res := c.SendMany(ctx, []Tx{
		tx("m1@y.com", "one\r\n"), tx("m2@y.com", "two\r\n"), tx("m3@y.com", "three\r\n"),
		tx("m4@y.com", "four\r\n"), tx("m5@y.com", "five\r\n"), tx("m6@y.com", "six\r\n"),
	}, nil)
	if len(res) != 6 {
		t.Fatalf("%d results, want 6", len(res))
	}
	if res[0].Err != nil || res[0].Rcpts[0].Err != nil {
		t.Errorf("m1: %v / %v, want delivered", res[0].Err, res[0].Rcpts[0].Err)
	}
	if res[1].Err != nil {
		t.Errorf("m2: transaction error %v, want only the recipient refused", res[1].Err)
	}
	if e := asError(t, res[1].Rcpts[0].Err); e.Command != "RCPT" || e.Code != 550 || e.Enhanced != "5.1.1" {
		t.Errorf("m2 recipient: %+v, want RCPT 550 5.1.1", e)
	}
	if e := asError(t, res[2].Err); e.Command != "BODY" || e.Code != 552 {
		t.Errorf("m3: %+v, want the body refused with 552", e)
	}
	if res[3].Err != nil {
		t.Errorf("m4: %v, want delivered", res[3].Err)
	}
	if e := asError(t, res[4].Err); e.Command != "MAIL" || e.Code != 421 || errors.Is(e, ErrNotAttempted) {
		t.Errorf("m5: %+v, want MAIL 421", e)
	}
	e := asError(t, res[5].Err)
	if !errors.Is(e, ErrNotAttempted) || e.Ambiguous() || e.Code != 0 {
		t.Errorf("m6: %+v, want not attempted", e)
	}
	if c.Usable() {
		t.Error("client usable after 421")
	}
	s.done(t)
}

// The connection drops after a "." that had the next transaction behind
// it: that message may have been taken (ambiguous), the next one was not
// sent at all.
func TestSendManyDropAfterDot(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m1@y.com>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 go ahead
C: one
C: .
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m2@y.com>
C: DATA
X: close`)
	c := mustDial(t, s, nil)
	res := c.SendMany(ctx, []Tx{tx("m1@y.com", "one\r\n"), tx("m2@y.com", "two\r\n"), tx("m3@y.com", "three\r\n")}, nil)
	if e := asError(t, res[0].Err); !e.Ambiguous() || e.Command != "BODY" {
		t.Errorf("m1: %+v, want an ambiguous BODY error", e)
	}
	for i, r := range res[1:] {
		if e := asError(t, r.Err); !errors.Is(e, ErrNotAttempted) || e.Ambiguous() {
			t.Errorf("m%d: %+v, want not attempted", i+2, e)
		}
	}
	s.done(t)
}

// Without PIPELINING, SendMany is Send after Send, each waiting for every
// reply; a transaction refused before any I/O (bad address) does not stop
// the next.
func TestSendManySerial(t *testing.T) {
	s := startScript(t, nil, greetSerial+`
C: MAIL FROM:<a@x.org>
S: 250 Ok
C: RCPT TO:<m1@y.com>
S: 250 Ok
C: DATA
S: 354 go
C: one
C: .
S: 250 Ok
C: MAIL FROM:<a@x.org>
S: 250 Ok
C: RCPT TO:<m3@y.com>
S: 250 Ok
C: DATA
S: 354 go
C: three
C: .
S: 250 Ok
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, nil)
	res := c.SendMany(ctx, []Tx{tx("m1@y.com", "one\r\n"), tx("m2@y.com>\r\nRSET", "two\r\n"), tx("m3@y.com", "three\r\n")}, nil)
	if res[0].Err != nil || res[2].Err != nil {
		t.Errorf("m1: %v, m3: %v; want both delivered", res[0].Err, res[2].Err)
	}
	if e := asError(t, res[1].Rcpts[0].Err); e.Command != "RCPT" || e.Code != 0 {
		t.Errorf("m2 recipient: %+v, want refused before sending", e)
	}
	if err := c.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}
	s.done(t)
}

// Cancelling the context interrupts SendMany's wait for a reply at once
// (one context.AfterFunc watches the whole call): it returns while the
// server still sleeps, with the cancellation as the cause, and the rest of
// the batch not attempted.
func TestSendManyCancelInterrupts(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m1@y.com>
C: DATA
X: sleep 5s`)
	c := mustDial(t, s, nil)
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(30*time.Millisecond, cancel)
	res := c.SendMany(cctx, []Tx{tx("m1@y.com", "one\r\n"), tx("m2@y.com", "two\r\n")}, nil)
	select {
	case err := <-s.errc:
		t.Fatalf("SendMany returned only after the server gave up (%v)", err)
	default:
	}
	if e := asError(t, res[0].Err); e.Command != "MAIL" || !errors.Is(e, context.Canceled) {
		t.Errorf("m1: %v, want MAIL cancelled", res[0].Err)
	}
	if !errors.Is(res[1].Err, ErrNotAttempted) {
		t.Errorf("m2: %v, want not attempted", res[1].Err)
	}
}

// done reports each transaction as soon as its reply is read, before the
// next reply is awaited: here the callback for m1 cancels the context, and
// SendMany returns while the server still sleeps instead of answering m2.
func TestSendManyReportsEachResultAtOnce(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m1@y.com>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 go ahead
C: one
C: .
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m2@y.com>
C: DATA
S: 250 2.0.0 Ok: queued as 1
X: sleep 5s`)
	c := mustDial(t, s, nil)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got []int
	res := c.SendMany(cctx, []Tx{tx("m1@y.com", "one\r\n"), tx("m2@y.com", "two\r\n")}, func(i int, r TxResult) {
		got = append(got, i)
		if i == 0 {
			if r.Err != nil {
				t.Errorf("m1 reported with %v", r.Err)
			}
			cancel()
		}
	})
	select {
	case err := <-s.errc:
		t.Fatalf("SendMany waited for the server (%v): m1 was not reported before m2's reply", err)
	default:
	}
	if len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Errorf("done called for %v, want [0 1]", got)
	}
	if res[0].Err != nil || !errors.Is(res[1].Err, context.Canceled) {
		t.Errorf("results %v / %v, want m1 delivered, m2 cancelled", res[0].Err, res[1].Err)
	}
}

// Once the stop channel closes (a pause), SendMany starts no other
// transaction: the message whose commands already went out behind the
// previous "." is finished, and the next gets ErrStopped without a byte
// of it sent — the script would fail on any further command.
func TestSendManyStopsBetweenMessages(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m1@y.com>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 go ahead
C: one
C: .
C: MAIL FROM:<a@x.org>
C: RCPT TO:<m2@y.com>
C: DATA
S: 250 2.0.0 Ok: queued as 1
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 go ahead
C: two
C: .
S: 250 2.0.0 Ok: queued as 2`)
	c := mustDial(t, s, nil)
	stop := make(chan struct{})
	res := c.SendMany(WithStop(ctx, stop), []Tx{tx("m1@y.com", "one\r\n"), tx("m2@y.com", "two\r\n"), tx("m3@y.com", "three\r\n")},
		func(i int, _ TxResult) {
			if i == 0 {
				close(stop)
			}
		})
	if res[0].Err != nil || res[1].Err != nil {
		t.Errorf("m1: %v, m2: %v, want both delivered", res[0].Err, res[1].Err)
	}
	e := asError(t, res[2].Err)
	if !errors.Is(e, ErrStopped) || e.Ambiguous() {
		t.Errorf("m3: %+v, want not started", e)
	}
	if !c.Usable() {
		t.Error("the session is not usable after stopping between messages")
	}
	s.done(t)
}
