// Package doctor runs, by itself, the checks the network-troubleshooting
// guide of the desktop product mailout grows from asks a person to do by hand,
// and says in plain words what is wrong and what to do.
//
// Place in the flow: cmd/mailout (`mailout doctor`) or the campaign circuit
// breaker (a campaign whose first attempts all failed on our side) ->
// doctor.Run(Config) -> named checks -> *Report (findings with stable IDs and
// severities, one verdict with advice in English and Spanish) -> rendered as
// a text checklist (WriteText) or JSON (JSON), stored with the campaign.
//
// Direct route: which DNS servers and where they came from, DNS on port 53
// over UDP and TCP, MX lookups, TCP to port 25 of the MX hosts (timeout,
// refused, reset and unreachable told apart), banner, EHLO, STARTTLS and
// signs of interception, MAIL FROM + RCPT TO the domain's postmaster + RSET
// (does the MX still host the domain?). Relay route: host name, TCP
// connect, banner, TLS mode against the port, EHLO, AUTH, login, MAIL FROM
// + RCPT TO + RSET without DATA; when the configured port fails, other
// usual ports of the same host are probed. Discover finds the relay settings of a mailbox address.
//
// Sender checks (CheckSender, `mailout doctor --sender`): SPF of the
// return path's domain (evaluated by internal/spf) and whether it covers
// the route's sending addresses, the DKIM key record, DMARC (internal/dmarc)
// and alignment with the From domain, and on the direct route the reverse
// DNS of the sending address and the EHLO name.
//
// The doctor never prints, returns or stores a password: findings carry the
// account's redacted URL only.
package doctor

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net"
	"strings"
	"time"

	"mailout/internal/route"
	"mailout/internal/transport"
)

// Config says what to check. The zero value of every optional field means
// its default.
type Config struct {
	// Route is route.Direct or route.Relay.
	Route route.Route
	// Relays are the relay accounts to check, in order (relay route).
	Relays []*transport.RelayAccount
	// RootCAs are the relay's TLS roots (like --relay-ca); nil = system.
	RootCAs *x509.CertPool
	// DNS are the DNS servers given by the user ("IP" or "IP:PORT");
	// empty = the nameservers of ResolvConf. The relay route uses them
	// to resolve the relay's host name too.
	DNS []string
	// ResolvConf is read when DNS is empty; default /etc/resolv.conf.
	ResolvConf string
	// Domains are the recipient domains whose MX to test (direct route);
	// empty = DefaultDomains.
	Domains []string
	// HELO is the EHLO name; default "localhost".
	HELO string
	// From and Rcpt are the envelope of the relay test (MAIL FROM, RCPT
	// TO, then RSET, no DATA). Defaults: the account's user name when it
	// is an address, else postmaster@ the HELO name; Rcpt
	// DefaultTestRcpt.
	From, Rcpt string
	// MXPort is the port of the MX hosts; default 25 (labs change it).
	MXPort int
	// MXRootCAs verify the MX hosts' STARTTLS certificates; nil = system.
	// A certificate they do not verify is a warning (opportunistic TLS,
	// RFC 7435); one certificate or one unknown authority answering for
	// unrelated domains' MX hosts is interception.
	MXRootCAs *x509.CertPool
	// AllowLoopbackMX accepts MX hosts on loopback and private addresses
	// (the lab setting --allow-loopback-mx).
	AllowLoopbackMX bool
	// MaxHosts caps the MX hosts tried per domain; default 2.
	MaxHosts int
	// Timeouts are short, for a diagnosis.
	Timeouts Timeouts
	// Dial opens TCP connections; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ProbePorts are tried on the relay host when the configured port
	// fails; default 587, 465, 2525, 25.
	ProbePorts []int
	// Now is the clock for timings; default time.Now.
	Now func() time.Time
}

// Timeouts bound each network step of a diagnosis.
type Timeouts struct {
	// DNS is the time one DNS server has for one query; default 4 s.
	DNS time.Duration
	// Connect is the TCP connect timeout; default 10 s.
	Connect time.Duration
	// Greeting bounds the wait for the 220 banner; default 10 s. A
	// STARTTLS URL on an implicit-TLS port waits this long.
	Greeting time.Duration
	// SMTP bounds each other SMTP step (EHLO, STARTTLS, AUTH, MAIL,
	// RCPT); default 20 s (servers delay a login after a failed one).
	SMTP time.Duration
}

// Defaults.
var (
	// DefaultDomains are checked on the direct route when no domain is
	// given: large providers whose MX hosts are always up.
	DefaultDomains = []string{"gmail.com", "outlook.com", "yahoo.com"}
	// DefaultProbePorts are tried on the relay host when its port fails:
	// submission (RFC 6409), submissions (RFC 8314), the common
	// alternative 2525, and SMTP.
	DefaultProbePorts = []int{587, 465, 2525, 25}
)

// DefaultTestRcpt is the recipient of the relay test: RFC 2606's example.com,
// never delivered to (the doctor sends RSET instead of DATA).
const DefaultTestRcpt = "mailout-doctor@example.com"

func (c *Config) withDefaults() Config {
	d := *c
	if d.HELO == "" {
		d.HELO = "localhost"
	}
	if len(d.Domains) == 0 {
		d.Domains = DefaultDomains
	}
	if d.MXPort == 0 {
		d.MXPort = 25
	}
	if d.MaxHosts == 0 {
		d.MaxHosts = 2
	}
	if d.Timeouts.DNS == 0 {
		d.Timeouts.DNS = 4 * time.Second
	}
	if d.Timeouts.Connect == 0 {
		d.Timeouts.Connect = 10 * time.Second
	}
	if d.Timeouts.Greeting == 0 {
		d.Timeouts.Greeting = 10 * time.Second
	}
	if d.Timeouts.SMTP == 0 {
		d.Timeouts.SMTP = 20 * time.Second
	}
	if d.ProbePorts == nil {
		d.ProbePorts = DefaultProbePorts
	}
	if d.Rcpt == "" {
		d.Rcpt = DefaultTestRcpt
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Dial == nil {
		d.Dial = (&net.Dialer{}).DialContext
	}
	return d
}

// Severity is the result of one check.
type Severity string

// Severities.
const (
	Pass Severity = "pass"
	Warn Severity = "warn"
	Fail Severity = "fail"
	Skip Severity = "skip"
)

// Finding is the result of one check on one subject.
type Finding struct {
	// ID names the check, stable: "dns.udp", "smtp.port25", "relay.auth".
	ID string `json:"id"`
	// Subject is what was checked: a DNS server, a domain, "host:port", a
	// relay account (redacted URL).
	Subject  string   `json:"subject,omitempty"`
	Severity Severity `json:"severity"`
	// Code is a stable machine-readable result ("timeout", "refused",
	// "answer", "535", …) that selects the words of the checklist.
	Code string `json:"code"`
	// Evidence: timings, the server's own replies, the addresses tried.
	Evidence []string `json:"evidence,omitempty"`
	// Duration of the check in milliseconds.
	Millis int64 `json:"ms"`
}

// Verdict is the conclusion of a diagnosis.
type Verdict struct {
	// ID is stable (see the Verdict constants).
	ID string `json:"id"`
	// Subject is the relay account or host the verdict is about, if any.
	Subject string `json:"subject,omitempty"`
	// Suggest is a concrete setting to try, e.g. a relay URL on a port
	// that answered ("smtps://user@host:465").
	Suggest string `json:"suggest,omitempty"`
	// Host is the relay host name the verdict is about, if any.
	Host string `json:"host,omitempty"`
	// Title and Advice are the verdict in words, per language ("en",
	// "es").
	Title  map[string]string `json:"title"`
	Advice map[string]string `json:"advice"`
	// Severity is set on the sender checks' problems: fail (receivers
	// refuse or distrust the mail) or warn (worth changing).
	Severity Severity `json:"severity,omitempty"`
}

// Verdict IDs. Stable: stored with campaigns and mapped in
// docs/troubleshooting.md.
const (
	VerdictOK = "ok"
	// Direct route.
	VerdictDNSBlocked       = "dns-blocked"         // no DNS server answers on port 53 (timeout)
	VerdictDNSRefused       = "dns-refused"         // DNS servers refuse (REFUSED or port unreachable)
	VerdictDNSNoServer      = "dns-no-server"       // no DNS server configured
	VerdictMXLookupFailed   = "mx-lookup-failed"    // DNS answers, but no domain's MX could be used
	VerdictPort25Blocked    = "port25-blocked"      // port 25 filtered everywhere (timeouts)
	VerdictPort25Refused    = "port25-refused"      // port 25 refused or reset everywhere
	VerdictNoRoute          = "network-unreachable" // no route to any server
	VerdictPort25Intercept  = "port25-intercepted"  // something between us answers in the MX's place
	VerdictTLSIntercepted   = "tls-intercepted"     // relay: unknown authority; direct: one certificate for unrelated MX hosts
	VerdictSMTPRejected     = "smtp-rejected"       // every MX refuses us at banner/EHLO, or mail for its own domain
	VerdictRelayHostUnknown = "relay-host-unknown"  // relay name does not exist
	VerdictRelayDNS         = "relay-dns-unreachable"
	VerdictRelayWrongPort   = "relay-wrong-port"  // configured port fails, another answers
	VerdictRelayRefused     = "relay-refused"     // nothing listens, no other port either
	VerdictRelayBlocked     = "relay-blocked"     // port filtered (timeout), no other port either
	VerdictTLSModeMismatch  = "tls-mode-mismatch" // smtps:// on a STARTTLS port or the reverse
	VerdictRelayTLSFailed   = "relay-tls-failed"  // STARTTLS missing or failing otherwise
	VerdictAuthRequired     = "relay-auth-required"
	VerdictAuthFailed       = "relay-auth-failed"
	VerdictAuthUnavailable  = "relay-auth-unavailable" // we have a user but the server offers no AUTH
	VerdictRelayDenied      = "relay-denied"
	VerdictSenderRejected   = "relay-sender-rejected"
	VerdictRelayProtocol    = "relay-protocol-error" // the server answered in a way we cannot use
)

// Report is the result of a diagnosis.
type Report struct {
	Route    route.Route `json:"route"`
	Started  time.Time   `json:"started"`
	Millis   int64       `json:"ms"`
	Findings []Finding   `json:"findings"`
	Verdict  Verdict     `json:"verdict"`
	// Accounts holds one verdict per relay account, in order (relay
	// route); Verdict is the first OK one, else the first account's.
	Accounts []Verdict `json:"accounts,omitempty"`
	// From is the sender whose identity CheckSender checked ("" for a
	// route diagnosis).
	From string `json:"from,omitempty"`
	// Problems are the sender checks' verdicts, each with its severity
	// and advice; Verdict is the first failing one, else sender-ok.
	Problems []Verdict `json:"problems,omitempty"`
}

// OK reports whether the route works or, for the sender checks, whether
// nothing fails (warnings may remain).
func (r *Report) OK() bool { return r.Verdict.ID == VerdictOK || r.Verdict.ID == VerdictSenderOK }

// JSON returns the report as indented JSON with stable IDs.
func (r *Report) JSON() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil { // only plain types: cannot happen
		panic(err)
	}
	return b
}

// ParseReport reads a report written by JSON (e.g. stored with a campaign).
func ParseReport(b []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Run runs every check of cfg.Route and returns the report. It never fails:
// what cannot be checked is a finding. ctx bounds the whole diagnosis.
func Run(ctx context.Context, cfg Config) *Report {
	c := cfg.withDefaults()
	r := &Report{Route: c.Route, Started: c.Now()}
	switch c.Route {
	case route.Relay:
		runRelay(ctx, &c, r)
	default:
		r.Route = route.Direct
		runDirect(ctx, &c, r)
	}
	r.Millis = c.Now().Sub(r.Started).Milliseconds()
	return r
}

// add appends a finding and returns it for further evidence.
func (r *Report) add(f Finding) *Finding {
	r.Findings = append(r.Findings, f)
	return &r.Findings[len(r.Findings)-1]
}

// newVerdict fills a verdict's words from the texts table.
func newVerdict(id, subject, suggest string) Verdict {
	v := Verdict{ID: id, Subject: subject, Suggest: suggest}
	v.fill()
	return v
}

func (v *Verdict) fill() {
	v.Title, v.Advice = map[string]string{}, map[string]string{}
	for _, lang := range []string{"en", "es"} {
		t := verdictTexts[lang][v.ID]
		v.Title[lang] = t.title
		v.Advice[lang] = strings.NewReplacer("{host}", v.Host, "{suggest}", v.Suggest).Replace(t.advice)
	}
}
