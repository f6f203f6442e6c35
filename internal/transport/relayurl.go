package transport

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"mailout/internal/addr"
	"mailout/internal/smtpclient"
	"mailout/internal/tlsconf"
)

// RelayAccount is one SMTP relay account parsed from a URL:
//
//	smtp://user:pass@host:587           STARTTLS required before AUTH (RFC 3207)
//	smtps://user:pass@host:465          implicit TLS (RFC 8314 §3.3)
//	smtp+insecure://user:pass@host:25   no TLS at all: for labs only
//
// Query parameters: password-env=VAR or password-file=PATH instead of a
// password in the URL; ca=FILE (PEM) to trust a private CA;
// fingerprint=sha256:HEX to accept exactly one (self-signed) certificate.
type RelayAccount struct {
	Scheme   string
	Host     string
	Port     int
	Username string
	// Password is never printed: String and errors redact it.
	Password    string
	TLS         smtpclient.TLSMode
	Insecure    bool
	CAFile      string
	Fingerprint []byte // SHA-256 of the leaf certificate (DER)
}

// String is the account's URL with the password hidden.
func (a *RelayAccount) String() string {
	u := url.URL{Scheme: a.Scheme, Host: net.JoinHostPort(a.Host, strconv.Itoa(a.Port))}
	if a.Username != "" {
		if a.Password != "" {
			u.User = url.UserPassword(a.Username, "xxxxx")
		} else {
			u.User = url.User(a.Username)
		}
	}
	s := u.String()
	return strings.Replace(s, ":xxxxx@", ":***@", 1)
}

// Addr is host:port.
func (a *RelayAccount) Addr() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// Redacted is the URL form safe for storage: no password, and the
// parameters that say where the password comes from.
func (a *RelayAccount) Redacted(passwordEnv, passwordFile string) string {
	s := a.String()
	s = strings.Replace(s, ":***@", "@", 1)
	q := url.Values{}
	if passwordEnv != "" {
		q.Set("password-env", passwordEnv)
	}
	if passwordFile != "" {
		q.Set("password-file", passwordFile)
	}
	if a.CAFile != "" {
		q.Set("ca", a.CAFile)
	}
	if len(a.Fingerprint) > 0 {
		q.Set("fingerprint", "sha256:"+hex.EncodeToString(a.Fingerprint))
	}
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// RelayURLError is a problem with a relay URL. It never contains the
// password.
type RelayURLError struct {
	URL    string // redacted
	Reason string
}

func (e *RelayURLError) Error() string { return fmt.Sprintf("relay %s: %s", e.URL, e.Reason) }

// redactURL hides the password of a URL that may not even parse.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(not a URL)"
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		if i := strings.IndexAny(rest, "?#"); i >= 0 {
			rest = rest[:i]
		}
		return scheme + "://" + rest
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	host := rest[at+1:]
	if i := strings.IndexAny(host, "?#"); i >= 0 {
		host = host[:i]
	}
	return scheme + "://" + user + ":***@" + host
}

// ParseRelayURL parses and checks one relay URL. getenv and readFile are
// os.Getenv and os.ReadFile in production.
func ParseRelayURL(raw string, getenv func(string) string, readFile func(string) ([]byte, error)) (*RelayAccount, RelayPasswordSource, error) {
	var src RelayPasswordSource
	bad := func(format string, args ...any) (*RelayAccount, RelayPasswordSource, error) {
		return nil, src, &RelayURLError{URL: redactURL(raw), Reason: fmt.Sprintf(format, args...)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the raw URL, password included: never return it.
		return bad("not a valid URL; expected smtp://user:password@host:587")
	}
	a := &RelayAccount{Scheme: strings.ToLower(u.Scheme)}
	switch a.Scheme {
	case "smtp":
		a.TLS, a.Port = smtpclient.TLSRequired, 587
	case "smtps":
		a.TLS, a.Port = smtpclient.TLSImplicit, 465
	case "smtp+insecure":
		a.TLS, a.Port, a.Insecure = smtpclient.TLSNone, 25, true
	default:
		return bad("unknown scheme %q: use smtp:// (STARTTLS), smtps:// (implicit TLS) or smtp+insecure:// (labs only)", u.Scheme)
	}
	if u.Hostname() == "" {
		return bad("no host name")
	}
	if strings.Count(u.Host, ":") > 1 && !strings.HasPrefix(u.Host, "[") {
		// "host:587:25" or a bare IPv6 address: url.Parse takes the last
		// part as the port and leaves the rest as a host no one can dial.
		return bad("%q is not host:port (write an IPv6 address in brackets, like [2001:db8::1]:587)", u.Host)
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
		a.Host = ip.String()
	} else if a.Host, err = addr.HostName(u.Hostname()); err != nil {
		// Dialled, and checked against the certificate, as A-labels
		// (RFC 5890): the Unicode form is for people only.
		var ae *addr.Error
		if errors.As(err, &ae) {
			return bad("host %q: %s", u.Hostname(), ae.Reason)
		}
		return bad("host %q: %v", u.Hostname(), err)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port %q is not a number from 1 to 65535", p)
		}
		a.Port = n
	}
	if u.Path != "" && u.Path != "/" {
		return bad("unexpected path %q", u.Path)
	}
	if u.User != nil {
		a.Username = u.User.Username()
		a.Password, _ = u.User.Password()
		if a.Password != "" {
			src.InURL = true
		}
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "password-env", "password-file", "ca", "fingerprint":
		default:
			return bad("unknown parameter %q (known: password-env, password-file, ca, fingerprint)", k)
		}
	}
	if v := q.Get("password-env"); v != "" {
		if a.Password != "" {
			return bad("password given twice (in the URL and password-env)")
		}
		a.Password = getenv(v)
		if a.Password == "" {
			return bad("environment variable %s is empty or not set", v)
		}
		src.Env = v
	}
	if v := q.Get("password-file"); v != "" {
		if a.Password != "" {
			return bad("password given twice")
		}
		b, err := readFile(v)
		if err != nil {
			return bad("cannot read password file: %v", errors.Unwrap(err))
		}
		a.Password = strings.TrimRight(string(b), "\r\n")
		if a.Password == "" {
			return bad("password file %s is empty", v)
		}
		src.File = v
	}
	if a.Password != "" && a.Username == "" {
		return bad("a password without a user name")
	}
	if v := q.Get("ca"); v != "" {
		a.CAFile = v
	}
	if v := q.Get("fingerprint"); v != "" {
		fp, err := ParseFingerprint(v)
		if err != nil {
			return bad("%v", err)
		}
		a.Fingerprint = fp
	}
	if a.Insecure && (a.CAFile != "" || len(a.Fingerprint) > 0) {
		return bad("ca and fingerprint need TLS: use smtp:// or smtps://")
	}
	return a, src, nil
}

// RelayPasswordSource says where an account's password came from.
type RelayPasswordSource struct {
	InURL bool
	Env   string
	File  string
}

// ParseFingerprint reads "sha256:HEX" (colons between bytes allowed).
func ParseFingerprint(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	if !ok {
		return nil, fmt.Errorf("fingerprint %q: expected sha256:HEX", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(h, ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("fingerprint %q: expected 64 hex digits of a SHA-256", s)
	}
	return b, nil
}

// LoadCAFile reads a PEM bundle into a pool that extends the system roots
// (tlsconf.LoadCAFile).
func LoadCAFile(path string) (*x509.CertPool, error) { return tlsconf.LoadCAFile(path) }

// TLSConfig is the account's TLS client settings: the certificate must be
// valid for Host, under roots (nil: the system roots) or the account's CA
// file, or be the pinned one by its SHA-256 fingerprint. The relay route
// sends with them and the doctor checks the relay with them.
func (a *RelayAccount) TLSConfig(roots *x509.CertPool) (*tls.Config, error) {
	return tlsconf.Client(tlsconf.Settings{ServerName: a.Host, Roots: roots, CAFile: a.CAFile, Fingerprint: a.Fingerprint})
}
