// Package dkim signs rendered messages with DKIM (RFC 6376; Ed25519 keys
// per RFC 8463) and checks that the matching public key is published.
//
// Place in the flow: internal/render turns a template and a recipient into
// RFC 5322 bytes (CRLF, final MIME encoding); this package signs those bytes
// last, just before the scheduler hands them to a transport, so nothing
// changes the signed content afterwards.
//
// Steps: New loads a PEM key once (PKCS#1 or PKCS#8, RSA or Ed25519) and
// validates domain and selector; AppendSigned, called by many workers at
// once, prepends a DKIM-Signature header field computed by
// github.com/emersion/go-msgauth/dkim (which does the canonicalisation);
// DNSRecord gives the TXT record to publish, and CheckPublished compares
// what DNS serves with the loaded key. GenerateKey makes new keys.
package dkim

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"mailout/internal/addr"
)

// Canonicalization is a DKIM canonicalisation algorithm (RFC 6376 §3.4).
type Canonicalization string

// The two algorithms of RFC 6376 §3.4. Relaxed survives the whitespace and
// header-case changes relays make; simple breaks on any of them.
const (
	Relaxed Canonicalization = "relaxed"
	Simple  Canonicalization = "simple"
)

// DefaultHeaders returns the header fields signed when present: the
// recommendations of RFC 6376 §5.4.1 plus the list fields of RFC 2369,
// RFC 2919 and RFC 8058 §3.1.
func DefaultHeaders() []string {
	return []string{
		"From", "Reply-To", "Subject", "Date", "To", "Cc",
		"Message-ID", "In-Reply-To", "References",
		"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
		"List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
	}
}

// DefaultOversign returns the header fields listed in h= once more than
// they occur (RFC 6376 §5.4.2, §8.15): every field a reader sees or a mail
// program acts on. A copy added after signing — a second From or To, a
// forged Subject, Date or unsubscribe link, a second Content-Type that
// makes the body render differently — breaks the signature, and so does a
// Reply-To or Cc added to a message that had none, since an absent field
// is listed once and so signed as absent (RFC 6376 §5.4).
func DefaultOversign() []string {
	return []string{
		"From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID",
		"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
		"List-Unsubscribe", "List-Unsubscribe-Post",
	}
}

// alwaysSigned returns the fields added to any header list: From is
// required by RFC 6376 §5.4, and RFC 8058 §3.1 requires the one-click
// unsubscribe fields to be covered by the signature.
func alwaysSigned() []string {
	return []string{"From", "List-Unsubscribe", "List-Unsubscribe-Post"}
}

// Options tune a Signer. The zero value is the recommended setting.
type Options struct {
	// HeaderCanon and BodyCanon default to Relaxed (c=relaxed/relaxed).
	HeaderCanon Canonicalization
	BodyCanon   Canonicalization
	// Headers lists the header field names to sign when present (nil:
	// DefaultHeaders()). From, List-Unsubscribe and List-Unsubscribe-Post
	// are always added.
	Headers []string
	// Oversign lists the names signed once more than they occur (nil:
	// DefaultOversign; an empty non-nil slice: none).
	Oversign []string
	// Expiration, when positive, adds x= that far after the signing time
	// (RFC 6376 §3.5). Leave it zero unless messages are delivered within
	// it, retries included: an expired signature fails at the receiver.
	Expiration time.Duration
	// Identity is the optional i= (AUID, RFC 6376 §3.5), like
	// "@news.example.com" or "news@example.com"; its domain must be the
	// signing domain or a subdomain of it.
	Identity string
	// Now is the clock for x=; nil means time.Now. (The t= timestamp is
	// set by go-msgauth from the system clock; it cannot be injected.)
	Now func() time.Time
}

// Signer signs messages for one domain and selector. It is immutable after
// New and safe for concurrent use by many goroutines.
type Signer struct {
	domain   string // A-label, lower case
	selector string
	key      *parsedKey
	hcanon   msgdkim.Canonicalization
	bcanon   msgdkim.Canonicalization
	headers  []string // canonical spelling, no duplicates
	over     map[string]bool
	expire   time.Duration
	identity string
	now      func() time.Time
}

// New loads a signing key for domain (Unicode or A-label) and selector. The
// key is PEM: PKCS#1 "RSA PRIVATE KEY", or PKCS#8 "PRIVATE KEY" holding RSA
// or Ed25519. Key errors are *KeyError (errors.Is ErrKeyFormat,
// ErrKeyEncrypted, ErrWeakKey) and never contain key material.
func New(domain, selector string, keyPEM []byte, opts Options) (*Signer, error) {
	d, err := addr.ParseDomain(domain)
	if err != nil {
		return nil, fmt.Errorf("dkim: signing domain: %w", err)
	}
	sel, err := parseSelector(selector)
	if err != nil {
		return nil, err
	}
	// The key record name must itself be a valid DNS name (RFC 1035 §2.3.4).
	if n := len(sel) + len("._domainkey.") + len(d); n > 253 {
		return nil, fmt.Errorf("dkim: record name %s._domainkey.%s is %d octets, DNS allows 253", sel, d, n)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	s := &Signer{domain: d, selector: sel, key: key, expire: opts.Expiration, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.Expiration < 0 || 0 < opts.Expiration && opts.Expiration < time.Second {
		// RFC 6376 §3.5: x= must be later than t=, both in whole seconds.
		return nil, fmt.Errorf("dkim: expiration %v: use zero (none) or at least a second, in practice days", opts.Expiration)
	}
	if s.hcanon, err = canon(opts.HeaderCanon); err != nil {
		return nil, err
	}
	if s.bcanon, err = canon(opts.BodyCanon); err != nil {
		return nil, err
	}
	if opts.Identity != "" {
		if err := checkIdentity(opts.Identity, d); err != nil {
			return nil, err
		}
		s.identity = opts.Identity
	}
	hs := opts.Headers
	if hs == nil {
		hs = DefaultHeaders()
	}
	s.headers, err = headerList(hs)
	if err != nil {
		return nil, err
	}
	over := opts.Oversign
	if over == nil {
		over = DefaultOversign()
	}
	s.over = make(map[string]bool, len(over))
	for _, h := range over {
		s.over[strings.ToLower(h)] = true
	}
	return s, nil
}

func canon(c Canonicalization) (msgdkim.Canonicalization, error) {
	switch Canonicalization(strings.ToLower(string(c))) {
	case "", Relaxed:
		return msgdkim.CanonicalizationRelaxed, nil
	case Simple:
		return msgdkim.CanonicalizationSimple, nil
	}
	return "", fmt.Errorf("dkim: unknown canonicalization %q: use relaxed or simple (RFC 6376 §3.4)", printable(string(c)))
}

// headerList validates field names (RFC 5322 §3.6.8 ftext: printable ASCII
// except colon), drops duplicates and adds the always-signed fields.
func headerList(hs []string) ([]string, error) {
	seen := make(map[string]bool)
	var out []string
	for _, h := range append(append([]string(nil), hs...), alwaysSigned()...) {
		if h == "" {
			return nil, errors.New("dkim: empty header field name in the signed header list")
		}
		for i := 0; i < len(h); i++ {
			if c := h[i]; c < 33 || c > 126 || c == ':' {
				return nil, fmt.Errorf("dkim: header field name %q is not valid (RFC 5322 §3.6.8)", printable(h))
			}
		}
		if k := strings.ToLower(h); !seen[k] {
			seen[k] = true
			out = append(out, h)
		}
	}
	return out, nil
}

// parseSelector checks RFC 6376 §3.1: selector = sub-domain *( "." sub-domain )
// with sub-domain = Let-dig [Ldh-str] (RFC 5321 §4.1.2).
func parseSelector(s string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("dkim: selector %q: %s; use letters, digits and hyphens, like mail2026 (RFC 6376 §3.1)", printable(s), why)
	}
	if s == "" {
		return "", bad("empty")
	}
	if len(s) > 63*2 {
		return "", bad("too long")
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" {
			return "", bad("empty label")
		}
		if len(l) > 63 {
			return "", bad("label longer than 63 octets")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", bad("label starts or ends with a hyphen")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return "", bad("invalid character")
			}
		}
	}
	return strings.ToLower(s), nil
}

// checkIdentity checks i= against RFC 6376 §3.5: [local-part] "@" domain,
// where domain is d= or a subdomain of it.
func checkIdentity(id, d string) error {
	at := strings.LastIndexByte(id, '@')
	if at < 0 {
		return fmt.Errorf("dkim: identity %q needs an @, like @%s (RFC 6376 §3.5)", printable(id), d)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == ';' {
			return fmt.Errorf("dkim: identity %q contains a character not allowed in i= (RFC 6376 §3.5)", printable(id))
		}
	}
	idd, err := addr.ParseDomain(id[at+1:])
	if err != nil {
		return fmt.Errorf("dkim: identity domain: %w", err)
	}
	if idd != d && !strings.HasSuffix(idd, "."+d) {
		return fmt.Errorf("dkim: identity %q is outside the signing domain %s; it must be %s or a subdomain (RFC 6376 §3.5)", printable(id), d, d)
	}
	return nil
}

// Domain returns the signing domain (d=) as an A-label.
func (s *Signer) Domain() string { return s.domain }

// Selector returns the selector (s=).
func (s *Signer) Selector() string { return s.selector }

// Algorithm returns the key type: "rsa" or "ed25519".
func (s *Signer) Algorithm() string { return s.key.algo }

// Warnings lists reasons the key is usable but not recommended (an RSA key
// under 2048 bits, an Ed25519 key some receivers ignore), for the operator.
func (s *Signer) Warnings() []string { return append([]string(nil), s.key.warnings...) }

// Sign returns a new copy of msg with a DKIM-Signature header field
// prepended. Use AppendSigned to reuse a buffer.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	return s.AppendSigned(make([]byte, 0, len(msg)+800), msg)
}

// AppendSigned appends the DKIM-Signature header field and then msg to dst
// and returns the extended buffer; msg is copied once. msg is a whole
// RFC 5322 message with CRLF line endings, in its final transfer encoding.
// On error dst is returned unchanged.
func (s *Signer) AppendSigned(dst, msg []byte) ([]byte, error) {
	f, err := s.HeaderField(msg)
	if err != nil {
		return dst, err
	}
	dst = append(dst, f...)
	return append(dst, msg...), nil
}

// HeaderField returns only the DKIM-Signature header field for msg, folded and
// ending in CRLF, for a caller that writes it and then msg to the wire
// without copying msg at all.
func (s *Signer) HeaderField(msg []byte) (string, error) {
	names, err := s.signedNames(msg)
	if err != nil {
		return "", err
	}
	o := &msgdkim.SignOptions{
		Domain:                 s.domain,
		Selector:               s.selector,
		Identifier:             s.identity,
		Signer:                 s.key.signer,
		HeaderCanonicalization: s.hcanon,
		BodyCanonicalization:   s.bcanon,
		HeaderKeys:             names,
	}
	if s.expire > 0 {
		o.Expiration = s.now().Add(s.expire)
	}
	ms, err := msgdkim.NewSigner(o)
	if err != nil {
		return "", fmt.Errorf("dkim: sign: %w", err)
	}
	if _, err := ms.Write(msg); err != nil {
		ms.Close()
		return "", fmt.Errorf("dkim: sign: %w", err)
	}
	if err := ms.Close(); err != nil {
		return "", fmt.Errorf("dkim: sign: %w", err)
	}
	return ms.Signature(), nil
}

// signedNames builds h= for one message: every configured field as many
// times as it occurs (RFC 6376 §5.4.2: instances are signed bottom-up),
// plus once more for an oversigned field, so an added instance breaks the
// signature (§8.15). An absent oversigned field is listed once: it then
// signs the field's absence (§5.4).
func (s *Signer) signedNames(msg []byte) ([]string, error) {
	hdr, ok := headerSection(msg)
	if !ok {
		return nil, errors.New("dkim: message has no empty line ending the header section (RFC 5322 §2.1)")
	}
	count := make(map[string]int, len(s.headers))
	for _, h := range s.headers {
		count[strings.ToLower(h)] = 0
	}
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.IndexByte(hdr, '\n'); i >= 0 {
			line, hdr = hdr[:i], hdr[i+1:]
		} else {
			hdr = nil
		}
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue // continuation line (RFC 5322 §2.2.3)
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			continue
		}
		k := strings.ToLower(string(bytes.TrimRight(line[:i], " \t")))
		if n, ok := count[k]; ok {
			count[k] = n + 1
		}
	}
	names := make([]string, 0, 2*len(s.headers))
	for _, h := range s.headers {
		n := count[strings.ToLower(h)]
		if s.over[strings.ToLower(h)] {
			n++
		}
		for range n {
			names = append(names, h)
		}
	}
	return names, nil
}

// headerSection returns the header fields of msg, up to and excluding the
// empty line; ok is false when msg has no empty line.
func headerSection(msg []byte) (hdr []byte, ok bool) {
	if bytes.HasPrefix(msg, []byte("\r\n")) || bytes.HasPrefix(msg, []byte("\n")) {
		return nil, true
	}
	if i := bytes.Index(msg, []byte("\n\r\n")); i >= 0 {
		if j := bytes.Index(msg[:i+1], []byte("\n\n")); j >= 0 {
			return msg[:j+1], true
		}
		return msg[:i+1], true
	}
	if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		return msg[:i+1], true
	}
	return nil, false
}
