// Package outcome classifies the end of one delivery attempt.
//
// Place in the flow: transport (relay, direct, sandbox) -> outcome -> store.
// A transport hands over the error (or nil) of an attempt together with a
// little context (route, step, port); Classify turns it into exactly one
// Class of the outcome taxonomy below, with its Kind (does it retry?), whether
// the fault is probably on our side, the server's reply and the reason the
// classifier matched. The Class decides retry, the report line, the advice
// text (en, es) and whether the attempt counts toward "nothing gets out".
//
// The package is pure: no I/O, no clock, no store.
package outcome

// Class is one class of the outcome taxonomy. Its string value is stable: it
// is stored, printed in reports and accepted on the command line.
type Class string

// The outcome taxonomy: one class per way an attempt can end. kindOf gives
// each its Kind and whether the fault is probably ours.
const (
	Delivered          Class = "delivered"
	DNSUnreachable     Class = "dns-unreachable"
	DNSNXDomain        Class = "dns-nxdomain"
	NoMailServer       Class = "no-mail-server"
	ConnectTimeout     Class = "connect-timeout"
	ConnectRefused     Class = "connect-refused"
	NetworkUnreachable Class = "network-unreachable"
	TLSFailed          Class = "tls-failed"
	AuthRequired       Class = "auth-required"
	AuthFailed         Class = "auth-failed"
	RelayDenied        Class = "relay-denied"
	SenderRejected     Class = "sender-rejected"
	RecipientUnknown   Class = "recipient-unknown"
	MailboxFull        Class = "mailbox-full"
	Greylisted         Class = "greylisted"
	Temporary          Class = "temporary"
	RateLimited        Class = "rate-limited"
	ContentRejected    Class = "content-rejected"
	ProtocolError      Class = "protocol-error"
	// SenderUnauthenticated: the receiver refused the message because the
	// sending domain fails its authentication checks (SPF, DKIM, DMARC or
	// the sending address's reverse DNS). The recipient is not at fault and
	// neither is the message's content: once the sender's DNS is put right
	// the same message is taken, so it is retried, and a run pauses when
	// receivers keep saying so (see the scheduler's verdict).
	SenderUnauthenticated Class = "sender-unauthenticated"
	// ProhibitedDestination: the destination resolved to an address we refuse
	// to send to (loopback, link-local, metadata).
	ProhibitedDestination Class = "prohibited-destination"
	// RenderFailed: the message could not be built for this recipient.
	RenderFailed Class = "render-failed"
	// DomainNotHosted: a recipient domain's MX answered as a server that
	// does not host the domain (relay denied, authentication required or
	// refused): the MX record is stale or the domain abandoned. Direct
	// route only; from the relay the same replies are AuthRequired,
	// AuthFailed or RelayDenied.
	DomainNotHosted Class = "domain-not-hosted"
	// CrashLoop: the process stopped (crashed, was killed) again and again
	// while this recipient was being sent, so it is given up on rather
	// than stopping the rest of the list. Set by the store when it releases
	// the recipient's lease for the last time (store.CrashLimit).
	CrashLoop Class = "crash-loop"
	// Permanent is a 5xx that matched no more precise class.
	Permanent Class = "permanent"
)

// Kind says what happens next to the recipient.
type Kind string

const (
	// KindDone: the message was accepted.
	KindDone Kind = "done"
	// KindTemporary: retry later with backoff, until the campaign's max age.
	KindTemporary Kind = "temporary"
	// KindPermanent: never retry this recipient.
	KindPermanent Kind = "permanent"
	// KindPermanentForRun: a fault of the route's account or configuration
	// (auth, relay denied): no recipient is to blame, so the recipient is kept
	// and the route (or the campaign) is stopped until the cause is fixed.
	KindPermanentForRun Kind = "permanent-for-run"
)

// Step is the SMTP step (or network step) at which an attempt ended.
type Step string

const (
	StepResolve  Step = "resolve"  // DNS: MX, A/AAAA of the relay or MX host
	StepConnect  Step = "connect"  // TCP connect
	StepGreeting Step = "greeting" // 220 banner
	StepEHLO     Step = "ehlo"
	StepTLS      Step = "starttls" // STARTTLS or implicit TLS handshake
	StepAuth     Step = "auth"
	StepMail     Step = "mail"
	StepRcpt     Step = "rcpt"
	StepData     Step = "data" // the DATA command itself
	StepBody     Step = "body" // message body and the reply to the final "."
	StepRender   Step = "render"
)

// Result is the classified end of one attempt.
type Result struct {
	Class Class
	Kind  Kind
	// LocalFault: the class points at our network or configuration rather
	// than the recipient (counts toward the circuit breaker).
	LocalFault bool
	// Step at which the attempt ended ("" when delivered).
	Step Step
	// Code and Enhanced are the server's reply, when there was one
	// (e.g. 550 and "5.1.1"); Text is the reply text or the error text.
	Code     int
	Enhanced string
	Text     string
	// Reason says why the classifier chose Class (for reports and tests).
	Reason string
	// Host is the server that produced the result (relay host or MX host).
	Host string
	// Ambiguous is set when the message may have been accepted although we
	// did not see the reply (connection lost after the final "."): a retry
	// may duplicate it (RFC 5321 §3.8, RFC 1047).
	Ambiguous bool
}

// Delivered reports whether the attempt ended with the message accepted.
func (r Result) IsDelivered() bool { return r.Class == Delivered }
