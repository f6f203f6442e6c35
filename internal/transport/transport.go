// Package transport moves rendered messages out of mailout by one of three
// routes: relay (an SMTP relay account, or an ordered list of
// them), direct (MX lookup, then SMTP to the recipient's server) and sandbox
// (kept in the store, nothing leaves the machine).
//
// Place in the flow: scheduler -> transport.Deliver -> outcome.Result ->
// scheduler records it. A Transport owns its connections (a pool of SMTP
// sessions, several messages per session) and is safe for concurrent use:
// the scheduler calls Deliver from as many goroutines as the speed profile
// allows connections.
package transport

import (
	"context"

	"mailout/internal/outcome"
	"mailout/internal/smtpclient"
)

// Message is one rendered message for one recipient.
type Message struct {
	DeliveryID int64
	CampaignID int64
	// From is the envelope sender (MAIL FROM); To the recipient (RCPT TO),
	// both as addr-spec with A-label domains.
	From string
	To   string
	// Domain is To's domain, lower-case A-label.
	Domain    string
	MessageID string
	// Data is the whole message, RFC 5322, CRLF line endings, dot-stuffing
	// not applied.
	Data []byte
	// SMTPUTF8 is set when the envelope needs RFC 6531; a non-ASCII From or
	// To asks for it in any case.
	SMTPUTF8 bool
	// Attempt is the delivery's attempt number, 1 for the first.
	Attempt int
}

// Result is the outcome of one Deliver call.
type Result struct {
	outcome.Result
	// Via names the way the message went: "sandbox", "relay:HOST" or
	// "direct:MXHOST".
	Via string
	// NotStarted: sending was stopping (WithStop) before any byte of the
	// message went out; the attempt is given back, nothing is recorded.
	NotStarted bool
}

// WithStop returns a context under which a batch (Batcher.DeliverBatch)
// starts no message once stop is closed: the message under way finishes
// with its reply, the rest come back NotStarted. A pause or Ctrl-C then
// takes effect between two messages of a pipelined group instead of after
// the whole group, or mid-message.
func WithStop(ctx context.Context, stop <-chan struct{}) context.Context {
	return smtpclient.WithStop(ctx, stop)
}

// notStarted is the result of a message left out because sending stops.
func notStarted(via string) Result {
	return Result{Result: outcome.Result{Text: smtpclient.ErrStopped.Error()}, Via: via, NotStarted: true}
}

// Transport delivers messages. Deliver never panics on a server's behaviour
// and always returns a classified result.
type Transport interface {
	Deliver(ctx context.Context, m *Message) Result
	// Close ends every open session (QUIT) and releases resources.
	Close() error
}
