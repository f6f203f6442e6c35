package outcome

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"mailout/internal/mx"
	"mailout/internal/route"
	"mailout/internal/smtpclient"
)

// Attempt is what a transport knows when one delivery attempt ends.
type Attempt struct {
	// Route is route.Relay or route.Direct.
	Route route.Route
	// Step is where the attempt failed when Err does not say it (for example
	// StepConnect for a dial error). An *smtpclient.Error names its own step.
	Step Step
	// Host and Port are the server that was tried (relay host or MX host).
	Host string
	Port int
	// Err is the attempt's error; nil means the message was accepted.
	Err error
}

// Classify turns one attempt into exactly one Class of the taxonomy, with
// its Kind, LocalFault and the reason the classifier chose it. It is pure.
//
// The order of the checks matters and is, in short: DNS, then SMTP replies
// (the server's words are the best evidence), then TLS, then the network
// error underneath.
func Classify(a Attempt) Result {
	r := classify(a)
	r.Host = a.Host
	if r.Class != Delivered && r.Step == "" {
		r.Step = a.Step
	}
	if r.Text == "" && a.Err != nil {
		r.Text = a.Err.Error()
	}
	// Server words and error texts are data: stored and printed, never
	// terminal control.
	r.Text, r.Reason = smtpclient.CleanText(r.Text), smtpclient.CleanText(r.Reason)
	return r
}

func classify(a Attempt) Result {
	if a.Err == nil {
		return Result{Class: Delivered, Kind: KindDone, Reason: "message accepted"}
	}
	err := a.Err

	var se *smtpclient.Error
	if errors.As(err, &se) && se.Code == 0 && isAmbiguous(se) {
		// RFC 5321 §3.8, RFC 1047: the whole message including the final
		// "." was sent and no reply was read (connection lost, timeout or
		// our own cancellation). The server may have taken it; a retry may
		// duplicate it, which is acceptable where a loss is not.
		return Result{Class: ProtocolError, Kind: KindTemporary, Step: StepBody, Ambiguous: true,
			Reason: "no reply to the final \".\": the message may have been accepted"}
	}

	if errors.Is(err, context.Canceled) {
		// Our own shutdown, pause or cancel: the recipient is not to blame
		// and the attempt is simply repeated later.
		return mk(Temporary, a, "attempt cancelled by mailout (pause, stop or shutdown)")
	}

	var me *mx.Error
	if errors.As(err, &me) {
		return classifyResolver(a, me.Kind)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return classifyDNSError(a, dnsErr)
	}

	if se != nil {
		return classifySMTP(a, se)
	}

	if isTLSError(err) {
		r := mk(TLSFailed, a, "TLS handshake or certificate verification failed")
		r.Step = a.Step
		if r.Step == "" {
			r.Step = StepTLS
		}
		return r
	}
	return classifyNet(a, a.Step, err)
}

// mk builds a Result of class c with the kind and local fault that kindOf
// gives c on the attempt's route.
func mk(c Class, a Attempt, reason string) Result {
	k, local := kindOf(c, a.Route)
	return Result{Class: c, Kind: k, LocalFault: local, Reason: reason}
}

// kindOf is the outcome taxonomy: for class c on route, its Kind (does it
// retry?) and whether the fault is probably on our side.
func kindOf(c Class, r route.Route) (Kind, bool) {
	relay := r == route.Relay
	switch c {
	case Delivered:
		return KindDone, false
	case DNSUnreachable, ConnectTimeout, NetworkUnreachable, TLSFailed:
		return KindTemporary, true
	case ConnectRefused:
		return KindTemporary, relay
	case DNSNXDomain:
		if relay {
			// The relay's own host name does not exist: a typo in the
			// configuration, not a fault of any recipient.
			return KindPermanentForRun, true
		}
		return KindPermanent, false
	case NoMailServer:
		return KindPermanent, false
	case AuthRequired, AuthFailed, RelayDenied:
		return KindPermanentForRun, true
	case SenderRejected:
		return KindPermanent, true
	case SenderUnauthenticated:
		// Our DNS, not the recipient: retried, and paused on when it
		// keeps coming (the scheduler's verdict).
		return KindTemporary, true
	case RecipientUnknown, ContentRejected, Permanent, ProhibitedDestination, DomainNotHosted:
		return KindPermanent, false
	case RenderFailed:
		return KindPermanent, true
	case CrashLoop:
		return KindPermanent, false
	case MailboxFull, Greylisted, Temporary, RateLimited, ProtocolError:
		return KindTemporary, false
	}
	// An unknown class is retried: a duplicate is acceptable, a loss is not.
	return KindTemporary, false
}

// classifyResolver maps the failures reported by internal/mx.
func classifyResolver(a Attempt, f mx.Failure) Result {
	r := func(c Class, reason string) Result {
		x := mk(c, a, reason)
		x.Step = StepResolve
		return x
	}
	switch f {
	case mx.FailureTimeout, mx.FailureRefused:
		return r(DNSUnreachable, "DNS server did not answer ("+string(f)+")")
	case mx.FailureServFail:
		return r(Temporary, "DNS server answered SERVFAIL")
	case mx.FailureNXDomain:
		return r(DNSNXDomain, "domain does not exist (NXDOMAIN)")
	case mx.FailureNoData:
		if a.Route == route.Relay {
			return r(DNSNXDomain, "relay host name has no address (NODATA)")
		}
		// RFC 5321 §5.1: no MX and no A/AAAA, so there is nowhere to deliver.
		return r(NoMailServer, "domain has no MX and no A/AAAA records")
	case mx.FailureNullMX:
		if a.Route == route.Relay {
			return r(DNSNXDomain, "relay host name has no address (null MX)")
		}
		// RFC 7505 §3: a null MX says the domain accepts no mail.
		return r(NoMailServer, "domain publishes a null MX (RFC 7505): it accepts no mail")
	case mx.FailureMXNoAddress:
		// The domain has MX records but none of their hosts
		// has an address; the receiver may fix its DNS, so retry.
		return r(Temporary, "no MX host of the domain has an address")
	case mx.FailureProhibited:
		return r(ProhibitedDestination, "destination resolves to a prohibited address (loopback, private, link-local or metadata)")
	}
	return r(Temporary, "DNS failure "+string(f))
}

func classifyDNSError(a Attempt, e *net.DNSError) Result {
	var x Result
	switch {
	case e.IsNotFound:
		x = mk(DNSNXDomain, a, "host name not found (NXDOMAIN)")
	case e.IsTimeout:
		x = mk(DNSUnreachable, a, "DNS query timed out")
	case e.IsTemporary:
		x = mk(DNSUnreachable, a, "DNS server failed temporarily")
	default:
		x = mk(DNSUnreachable, a, "DNS lookup failed")
	}
	x.Step = StepResolve
	return x
}

// stepOf maps smtpclient's command names to steps.
func stepOf(cmd string) Step {
	switch strings.ToUpper(cmd) {
	case "CONNECT":
		return StepGreeting
	case "EHLO", "HELO", "LHLO":
		return StepEHLO
	case "STARTTLS":
		return StepTLS
	case "AUTH":
		return StepAuth
	case "MAIL":
		return StepMail
	case "RCPT":
		return StepRcpt
	case "DATA":
		return StepData
	case "BODY":
		return StepBody
	}
	return ""
}

func classifySMTP(a Attempt, e *smtpclient.Error) Result {
	cmd := strings.ToUpper(e.Command)
	if cmd == "QUIT" {
		// The message was accepted before QUIT; an error on
		// QUIT must never turn a delivered message into a retry.
		return Result{Class: Delivered, Kind: KindDone, Reason: "message accepted; QUIT failed afterwards (ignored)", Code: e.Code, Enhanced: e.Enhanced, Text: e.Text}
	}
	step := stepOf(cmd)
	if step == "" {
		step = a.Step
	}
	if e.Code == 0 {
		return classifyNoReply(a, e, step)
	}
	r := classifyReply(a, step, e.Code, e.Enhanced, e.Text)
	r.Step, r.Code, r.Enhanced, r.Text = step, e.Code, e.Enhanced, e.Text
	return r
}

// classifyNoReply handles an *smtpclient.Error that carries no reply: an I/O
// error, a timeout or a malformed reply at the given command.
func classifyNoReply(a Attempt, e *smtpclient.Error, step Step) Result {
	var op *net.OpError
	if step == StepGreeting && errors.As(e, &op) && op.Op == "dial" {
		// smtpclient reports the TCP connect under "connect" too.
		step = StepConnect
	}
	if step == StepTLS || isTLSError(e) {
		x := mk(TLSFailed, a, "TLS handshake failed")
		if isTLSError(e) {
			x.Reason = "TLS certificate or handshake error"
		}
		x.Step = step
		return x
	}
	if e.Err == nil {
		// smtpclient refused before or without asking the server.
		switch step {
		case StepAuth:
			// No usable mechanism, credentials not sent without TLS, or an
			// exchange we had to abort: retrying will not help.
			x := mk(AuthFailed, a, "could not authenticate: "+e.Text)
			x.Step = step
			return x
		case StepMail:
			x := mk(SenderRejected, a, "the sender address cannot be used: "+e.Text)
			x.Step = step
			return x
		case StepRcpt:
			x := mk(Permanent, a, "the recipient address cannot be used: "+e.Text)
			x.Step = step
			return x
		}
	}
	x := classifyNet(a, step, e.Err)
	if x.Class == Temporary {
		// Not a network error we know: a malformed or oversized reply
		// (smtpclient.ErrProtocol) or another break in the session.
		x = mk(ProtocolError, a, "the SMTP session broke without a proper reply")
	}
	x.Step = step
	return x
}

// isAmbiguous tells whether smtpclient says the message may have been
// accepted without our seeing the reply. Older versions of smtpclient.Error
// have no Ambiguous method: then a failure without reply at "BODY" (the reply
// to the final ".") counts as ambiguous.
func isAmbiguous(e *smtpclient.Error) bool {
	if am, ok := any(e).(interface{ Ambiguous() bool }); ok {
		return am.Ambiguous()
	}
	return strings.EqualFold(e.Command, "BODY")
}

func isTLSError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		rh  tls.RecordHeaderError
		cve *tls.CertificateVerificationError
		ae  tls.AlertError
	)
	return errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) ||
		errors.As(err, &rh) || errors.As(err, &cve) || errors.As(err, &ae)
}

// classifyNet classifies a network error at the given step.
func classifyNet(a Attempt, step Step, err error) Result {
	atConnect := step == StepConnect || step == StepResolve
	timeout := errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		timeout = true
	}
	var x Result
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		x = mk(ConnectRefused, a, "connection refused (TCP RST): nothing listens on that port")
		step = StepConnect
	case errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH):
		x = mk(NetworkUnreachable, a, "no route to the network or host")
		step = StepConnect
	case timeout && atConnect:
		x = mk(ConnectTimeout, a, "TCP connect timed out: the port is probably filtered")
	case timeout:
		x = mk(ProtocolError, a, "timed out waiting for the server mid-session")
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed):
		x = mk(ProtocolError, a, "connection closed unexpectedly")
	case err == nil:
		x = mk(Temporary, a, "failure without a cause")
	default:
		var op *net.OpError
		if errors.As(err, &op) {
			if op.Op == "dial" {
				x = mk(NetworkUnreachable, a, "could not connect")
				step = StepConnect
				break
			}
			x = mk(ProtocolError, a, "network error mid-session")
			break
		}
		x = mk(Temporary, a, "unrecognised error")
	}
	x.Step = step
	return x
}
