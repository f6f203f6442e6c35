// Package mailbox reads a bounce mailbox over IMAP (RFC 9051, with
// github.com/emersion/go-imap/v2) or POP3 (RFC 1939, internal/pop3) and
// applies what it finds: each message is parsed by internal/bounce,
// matched to its delivery by the VERP token (else by the original
// Message-ID) and recorded in the store; what cannot be read or matched
// is kept for review. Every message is processed once: IMAP messages get
// \Seen and the keyword $MailoutProcessed, and both protocols' UIDs are
// remembered in the store, so a second run changes nothing.
//
// Place in the flow: `mailout bounces fetch` (and later `serve`, on a
// timer) -> Fetch -> bounce.Parse -> store.
package mailbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"mailout/internal/tlsconf"
)

// Protocol is how the mailbox is read.
type Protocol string

const (
	IMAP Protocol = "imap"
	POP3 Protocol = "pop3"
)

// Security is how the session is protected.
type Security int

const (
	// StartTLS: plain connection upgraded before logging in (IMAP
	// STARTTLS, RFC 9051 §6.2.1; POP3 STLS, RFC 2595 §4); refused when the
	// server does not offer it.
	StartTLS Security = iota
	// ImplicitTLS: TLS from the first byte (RFC 8314 §3.3).
	ImplicitTLS
	// Insecure: no TLS at all, for labs only (imap+insecure://).
	Insecure
)

// ErrURL is wrapped by the errors of a mailbox URL that cannot be used.
var ErrURL = errors.New("mailbox URL")

// Config says which mailbox to read and how.
type Config struct {
	Protocol Protocol
	Security Security
	// Host and Port of the server; User the login name.
	Host string
	Port string
	User string
	// Folder is the IMAP mailbox to read (default INBOX).
	Folder string
	// Password is never printed: Config.String leaves it out.
	Password string
	// CAFile, when set, is a PEM file of the CA that signed the server's
	// certificate (added to the system roots).
	CAFile string
	// Timeout bounds each network step (default one minute).
	Timeout time.Duration
	// MaxMessage is the largest message read whole (default
	// DefaultMaxMessage); a larger one is kept for review with its first
	// MaxMessage bytes, and the next messages are read as usual.
	MaxMessage int
}

// DefaultMaxMessage is the largest message read from a bounce mailbox by
// default: a bounce carries at most the original message, and a campaign
// message is far smaller.
const DefaultMaxMessage = 32 << 20

// ErrTooLarge is wrapped by Box.Get's error for a message over
// Config.MaxMessage; the data returned with it is the message's start.
var ErrTooLarge = errors.New("the message is over the size limit")

// Parse reads a mailbox URL: imap://user@host[:143][/FOLDER] (STARTTLS
// required), imap+insecure://…, imaps://user@host[:993][/FOLDER],
// pop3://user@host[:110] (STLS required), pop3+insecure://…,
// pop3s://user@host[:995]. A user name that is an address may be written
// as is (bounces@example.com@mail.example.com) or with %40. A password in
// the URL is refused: it would end up in shell histories and process
// lists; it comes from a file or the environment instead.
func Parse(raw string) (*Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrURL, err)
	}
	c := &Config{}
	var port string
	switch strings.ToLower(u.Scheme) {
	case "imap":
		c.Protocol, c.Security, port = IMAP, StartTLS, "143"
	case "imap+insecure":
		c.Protocol, c.Security, port = IMAP, Insecure, "143"
	case "imaps":
		c.Protocol, c.Security, port = IMAP, ImplicitTLS, "993"
	case "pop3":
		c.Protocol, c.Security, port = POP3, StartTLS, "110"
	case "pop3+insecure":
		c.Protocol, c.Security, port = POP3, Insecure, "110"
	case "pop3s":
		c.Protocol, c.Security, port = POP3, ImplicitTLS, "995"
	default:
		return nil, fmt.Errorf("%w: scheme %q: use imap://, imaps://, pop3:// or pop3s://", ErrURL, u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return nil, fmt.Errorf("%w: no user name (imap://user@host)", ErrURL)
	}
	if _, set := u.User.Password(); set {
		return nil, fmt.Errorf("%w: a password in the URL is not accepted: use --mailbox-password-env or --mailbox-password-file", ErrURL)
	}
	c.User = u.User.Username()
	c.Host = u.Hostname()
	if c.Host == "" {
		return nil, fmt.Errorf("%w: no host", ErrURL)
	}
	c.Port = u.Port()
	if c.Port == "" {
		c.Port = port
	}
	if c.Folder = strings.TrimPrefix(u.Path, "/"); c.Folder == "" {
		c.Folder = "INBOX"
	}
	if c.Protocol == POP3 && c.Folder != "INBOX" {
		return nil, fmt.Errorf("%w: POP3 has no folders", ErrURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: no query or fragment is understood", ErrURL)
	}
	return c, nil
}

// Addr is host:port.
func (c *Config) Addr() string { return net.JoinHostPort(c.Host, c.Port) }

// String is the URL without any password: the name the mailbox is
// remembered and shown under.
func (c *Config) String() string {
	scheme := string(c.Protocol)
	switch c.Security {
	case ImplicitTLS:
		scheme += "s"
	case Insecure:
		scheme += "+insecure"
	}
	u := url.URL{Scheme: scheme, User: url.User(c.User), Host: c.Addr()}
	if c.Protocol == IMAP {
		u.Path = "/" + c.Folder
	}
	return u.String()
}

func (c *Config) tls() (*tls.Config, error) {
	return tlsconf.Client(tlsconf.Settings{ServerName: c.Host, CAFile: c.CAFile})
}

func (c *Config) maxMessage() int {
	if c.MaxMessage > 0 {
		return c.MaxMessage
	}
	return DefaultMaxMessage
}

func (c *Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return time.Minute
}

// Box is an open mailbox session.
type Box interface {
	// List returns the messages' UIDs, oldest first; for IMAP only those
	// not yet flagged as processed.
	List(ctx context.Context) ([]string, error)
	// Get returns one message. Over Config.MaxMessage it returns the
	// message's start and an error wrapping ErrTooLarge, and the session
	// goes on (unless the error says otherwise).
	Get(ctx context.Context, uid string) ([]byte, error)
	// Done flags the message as processed (IMAP); a no-op for POP3.
	Done(ctx context.Context, uid string) error
	Close() error
}

// Open logs in to the mailbox.
func Open(ctx context.Context, c *Config) (Box, error) {
	switch c.Protocol {
	case IMAP:
		return openIMAP(ctx, c)
	case POP3:
		return openPOP3(ctx, c)
	}
	return nil, fmt.Errorf("%w: protocol %q", ErrURL, c.Protocol)
}

// tooLarge is Get's error for a message of size bytes (at least) over
// limit; lost says the session ended with it.
func tooLarge(size int64, limit int, lost bool) error {
	if lost {
		return fmt.Errorf("%w: over %d bytes, the limit is %d (the server's session ended while the rest was skipped)", ErrTooLarge, size, limit)
	}
	return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, size, limit)
}
