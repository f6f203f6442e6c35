package smtpclient

import (
	"errors"
	"testing"
)

// Outlook and Spamhaus-listed hosts refuse a pipelined MAIL and hang up
// before answering the RCPTs and DATA written with it. The refusal read
// is the transaction's answer (RFC 2920 §3.1): permanent, not an I/O error
// on a later reply.
func TestPipelinedMailRefusedThenClosed(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<b@y.com>
C: RCPT TO:<c@y.com>
C: DATA
S: 550 5.7.1 Service unavailable, Client host [127.0.0.1] blocked using Spamhaus
X: close`)
	c := mustDial(t, s, nil)
	_, err := c.Send(ctx, "a@x.org", []string{"b@y.com", "c@y.com"}, []byte("x"), SendOptions{})
	e := asError(t, err)
	if e.Command != "MAIL" || e.Code != 550 || e.Enhanced != "5.7.1" || !e.Permanent() {
		t.Errorf("got %v, want the MAIL refusal 550 5.7.1", err)
	}
	if c.Usable() {
		t.Error("session usable after the server hung up")
	}
	s.done(t)
}

// The only recipient is refused, then the server hangs up before the
// reply to DATA: the recipient has its answer, 5.1.1, and nothing else
// failed.
func TestPipelinedRcptRefusedThenClosed(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<b@y.com>
C: DATA
S: 250 2.1.0 Ok
S: 550 5.1.1 <b@y.com>: Recipient address rejected: User unknown
X: close`)
	c := mustDial(t, s, nil)
	res, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("x"), SendOptions{})
	if err != nil {
		t.Errorf("Send: %v, want no transaction error: the recipient was refused", err)
	}
	if e := asError(t, res[0].Err); e.Command != "RCPT" || e.Code != 550 || e.Enhanced != "5.1.1" || !e.Permanent() {
		t.Errorf("recipient: %v, want RCPT 550 5.1.1", res[0].Err)
	}
	if c.Usable() {
		t.Error("session usable after the server hung up")
	}
	s.done(t)
}

// One recipient accepted, one refused, then the hang-up before the reply
// to DATA: the refused one keeps its 5.1.1; the accepted one did not get
// the message, which was never sent: a temporary failure, not ambiguous.
func TestPipelinedSecondRcptRefusedThenClosed(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<b@y.com>
C: RCPT TO:<c@y.com>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 550 5.1.1 <c@y.com>: Recipient address rejected: User unknown
X: close`)
	c := mustDial(t, s, nil)
	res, err := c.Send(ctx, "a@x.org", []string{"b@y.com", "c@y.com"}, []byte("x"), SendOptions{})
	e := asError(t, err)
	if !e.Temporary() || e.Ambiguous() || e.Code != 0 {
		t.Errorf("transaction: %v, want a temporary failure without reply, not ambiguous", err)
	}
	if res[0].Err != nil {
		t.Errorf("b: %v, want accepted (and the transaction error above)", res[0].Err)
	}
	if e := asError(t, res[1].Err); e.Code != 550 || e.Enhanced != "5.1.1" {
		t.Errorf("c: %v, want RCPT 550 5.1.1", res[1].Err)
	}
	s.done(t)
}

// SendMany: the next message's commands went out behind a ".". Whatever
// ends the session before their replies, that message and the ones after
// it were not sent (ErrNotAttempted), and a refusal read before the
// hang-up stays with its own transaction.
func TestSendManyRefusalThenClosed(t *testing.T) {
	first := greetESMTP + `
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
C: DATA`
	t.Run("MAIL of the next message refused", func(t *testing.T) {
		s := startScript(t, nil, first+`
S: 250 2.0.0 Ok: queued as 1
S: 550 5.7.1 Client host [127.0.0.1] blocked using Spamhaus
X: close`)
		c := mustDial(t, s, nil)
		res := c.SendMany(ctx, []Tx{tx("m1@y.com", "one\r\n"), tx("m2@y.com", "two\r\n"), tx("m3@y.com", "three\r\n")}, nil)
		if res[0].Err != nil {
			t.Errorf("m1: %v, want delivered", res[0].Err)
		}
		if e := asError(t, res[1].Err); e.Command != "MAIL" || e.Code != 550 || errors.Is(e, ErrNotAttempted) {
			t.Errorf("m2: %v, want the MAIL refusal", res[1].Err)
		}
		if !errors.Is(res[2].Err, ErrNotAttempted) {
			t.Errorf("m3: %v, want not attempted", res[2].Err)
		}
		s.done(t)
	})
	t.Run("body refused", func(t *testing.T) {
		s := startScript(t, nil, first+`
S: 554 5.7.1 Message rejected as spam
X: close`)
		c := mustDial(t, s, nil)
		res := c.SendMany(ctx, []Tx{tx("m1@y.com", "one\r\n"), tx("m2@y.com", "two\r\n"), tx("m3@y.com", "three\r\n")}, nil)
		if e := asError(t, res[0].Err); e.Command != "BODY" || e.Code != 554 {
			t.Errorf("m1: %v, want the body refused", res[0].Err)
		}
		for i, r := range res[1:] {
			if e := asError(t, r.Err); !errors.Is(e, ErrNotAttempted) || e.Ambiguous() {
				t.Errorf("m%d: %v, want not attempted", i+2, r.Err)
			}
		}
		s.done(t)
	})
}

// Quoted local parts go into MAIL FROM and RCPT TO with their quotes
// (RFC 5321 §4.1.2 Quoted-string).
func TestQuotedLocalPartsOnTheWire(t *testing.T) {
	s := startScript(t, nil, greetSerial+`
C: MAIL FROM:<"john doe"@example.com>
S: 250 Ok
C: RCPT TO:<"jane q. public"@example.org>
S: 250 Ok
C: DATA
S: 354 go
C: x
C: .
S: 250 Ok
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, nil)
	if _, err := c.Send(ctx, `"john doe"@example.com`, []string{`"jane q. public"@example.org`}, []byte("x"), SendOptions{}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	_ = c.Quit(ctx)
	s.done(t)
}
