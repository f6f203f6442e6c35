// Package addr parses e-mail addresses and domain names once, at the edge
// (CSV import, API, configuration), into typed values that the rest of
// mailout passes around: recipient builds its list from them, render puts
// them in headers, mx looks up Address.Domain and smtpclient writes
// Address.String() into MAIL FROM and RCPT TO.
//
// Only the bare addr-spec is accepted (RFC 5321 §4.1.2 Mailbox; RFC 5322
// §3.4.1): no display names, no comments, no domain literals, no ports. The
// parser is deliberately strict, because a bulk sender must never "format and
// hope": an address that contains CR, LF, NUL or another control character is
// rejected, never cleaned, and every limit of RFC 5321
// §4.5.3.1 is checked with a message that names it.
package addr

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Length limits, in octets.
const (
	// MaxInput caps the raw input before any parsing, so that no parser
	// (ours or one a caller chains after us) ever sees a pathological
	// length (CVE-2025-61725 made net/mail quadratic on long inputs).
	// It is larger than MaxAddress so that surrounding spaces, or a long
	// but otherwise valid-looking address, get the precise message below.
	MaxInput = 320
	// MaxLocal is the longest local part (RFC 5321 §4.5.3.1.1).
	MaxLocal = 64
	// MaxDomain is the longest domain name in text form. RFC 5321
	// §4.5.3.1.2 says 255 octets, but a DNS name is at most 255 octets in
	// wire form (RFC 1035 §3.1), which is 253 characters of text without
	// the trailing dot: a longer name cannot be looked up, so mail to it
	// can never be delivered.
	MaxDomain = 253
	// MaxLabel is the longest DNS label (RFC 1035 §2.3.4).
	MaxLabel = 63
	// MaxAddress is the longest address: a Path is at most 256 octets
	// including the angle brackets (RFC 5321 §4.5.3.1.3), so 254 without.
	MaxAddress = 254
)

// Address is a parsed, validated addr-spec.
type Address struct {
	// Local is the local part in unquoted form: `john doe` for
	// "john doe"@example.com, `a"b` for "a\"b"@example.com. Its case is
	// kept as written, since RFC 5321 §2.4 leaves it to the receiving host.
	Local string
	// Domain is the domain as a lower-case A-label (punycode) name without
	// a trailing dot: what DNS and RCPT TO use.
	Domain string
	// UDomain is Domain in Unicode form, for display only.
	UDomain string
}

// Error is a parse failure. Reason is a short sentence meant for the person
// who typed the address, e.g. "local part too long: 70 octets, max 64 (RFC
// 5321 §4.5.3.1.1)".
type Error struct {
	Input  string // the input, cut to MaxInput octets
	Reason string
	Err    error // underlying cause (IDNA), if any
}

func (e *Error) Error() string {
	return fmt.Sprintf("address %q: %s", e.Input, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(input, format string, args ...any) *Error {
	return &Error{Input: clip(input), Reason: fmt.Sprintf(format, args...)}
}

// clip cuts s to MaxInput octets, so that an error never carries a huge
// input around.
func clip(s string) string {
	if len(s) > MaxInput {
		return strings.ToValidUTF8(s[:MaxInput], "")
	}
	return s
}

// Reasons that several checks share.
const (
	reasonDisplayName = "display-name form like `Bob <bob@example.com>` is not allowed: put only the address in the email column"
	reasonComment     = "comments in parentheses are not allowed: put only the address in the email column"
	reasonLiteral     = "domain literals like [192.0.2.1] are not allowed for bulk sending: use the domain name (an IP address bypasses the MX lookup)"
	reasonPort        = "a port after the domain is not allowed for bulk sending: mail always goes to port 25 of the domain's mail server"
)

// Parse parses one addr-spec such as `bob+news@example.com`. Leading and
// trailing white space is trimmed; anything else that is not an addr-spec is
// rejected with an *Error saying why.
func Parse(s string) (Address, error) {
	// Cap the length before looking at the content at all: an oversized
	// input is refused unread.
	if len(s) > MaxInput {
		return Address{}, errorf(s, "address too long: %d octets, max %d (RFC 5321 §4.5.3.1.3)", len(s), MaxAddress)
	}
	if r := checkText(s); r != "" {
		return Address{}, errorf(s, "%s", r)
	}
	in := s
	s = strings.TrimFunc(s, unicode.IsSpace)
	if s == "" {
		return Address{}, errorf(in, "empty address")
	}
	if r := outsideQuotes(s); r != "" {
		return Address{}, errorf(in, "%s", r)
	}

	var local string
	var rest string // starts at the '@'
	if s[0] == '"' {
		l, n, reason := parseQuoted(s)
		if reason != "" {
			return Address{}, errorf(in, "%s", reason)
		}
		local, rest = l, s[n:]
		if rest == "" {
			return Address{}, errorf(in, "missing @ and domain after the quoted local part")
		}
		if rest[0] != '@' {
			return Address{}, errorf(in, "unexpected %q after the quoted local part: only @ and the domain may follow it", rest[0])
		}
		if local == "" {
			return Address{}, errorf(in, "empty local part")
		}
	} else {
		i := 0
		for i < len(s) && s[i] != '@' {
			c := s[i]
			if c < utf8.RuneSelf && !isAtext(c) && c != '.' {
				return Address{}, errorf(in, "%s", badLocalChar(c))
			}
			i++
		}
		if i == len(s) {
			return Address{}, errorf(in, "missing @: an address looks like name@example.com")
		}
		local, rest = s[:i], s[i:]
		if r := checkDotAtom(local, "local part"); r != "" {
			return Address{}, errorf(in, "%s", r)
		}
	}
	if err := checkUnicodeLocal(local); err != "" {
		return Address{}, errorf(in, "%s", err)
	}

	domain := rest[1:]
	if strings.IndexByte(domain, '@') >= 0 {
		return Address{}, errorf(in, "more than one @: quote the local part if it really contains @, like \"info@\"@example.com")
	}
	if domain == "" {
		return Address{}, errorf(in, "missing domain after @")
	}
	aDomain, uDomain, derr := parseDomain(domain)
	if derr != nil {
		derr.Input = clip(in)
		return Address{}, derr
	}

	a := Address{Local: local, Domain: aDomain, UDomain: uDomain}
	// RFC 5321 §4.5.3.1.1 counts the local part as it goes on the wire,
	// quotes and backslashes included.
	wireLocal := quoteLocal(local)
	if len(wireLocal) > MaxLocal {
		return Address{}, errorf(in, "local part too long: %d octets, max %d (RFC 5321 §4.5.3.1.1)", len(wireLocal), MaxLocal)
	}
	if n := len(wireLocal) + 1 + len(aDomain); n > MaxAddress {
		return Address{}, errorf(in, "address too long: %d octets, max %d (RFC 5321 §4.5.3.1.3)", n, MaxAddress)
	}
	return a, nil
}

// String returns the address as it goes into MAIL FROM and RCPT TO: the
// local part as a dot-atom when it is one, otherwise as a Quoted-string
// (RFC 5321 §4.1.2: "a sender SHOULD NOT send a quoted local part unless
// necessary"), then "@" and the A-label domain.
func (a Address) String() string {
	return quoteLocal(a.Local) + "@" + a.Domain
}

// Key is the canonical key for de-duplication and suppression lists: the
// local part lower-cased (and NFC-normalised when it is not ASCII), "@", and
// the A-label domain. Quoted and unquoted spellings of the same local part
// get the same key, and so do the Unicode and A-label forms of a domain.
//
// Policy: the local part is compared case-insensitively. RFC 5321 §2.4
// allows a receiving host to treat Bob@ and bob@ as two mailboxes, but
// practically none does, and for a bulk sender the cost of the two errors is
// not symmetric: treating them as different sends the same person the
// campaign twice (and a hard bounce on one would not suppress the other),
// while treating them as equal loses a recipient only on a host that really
// distinguishes case, which nobody can reasonably rely on. Provider-specific
// rewrites (Gmail ignores dots and "+tags") are NOT applied: they hold for
// one provider only, and a +tag is often the very thing the user asked for.
func (a Address) Key() string {
	local := a.Local
	if !isASCII(local) {
		local = norm.NFC.String(local)
	}
	return strings.ToLower(local) + "@" + a.Domain
}

// NeedsSMTPUTF8 reports whether sending to the address needs the SMTPUTF8
// extension (RFC 6531 §3.4): the local part has non-ASCII characters. The
// domain never needs it, because String uses the A-label form.
func (a Address) NeedsSMTPUTF8() bool { return !isASCII(a.Local) }

// quoteLocal returns local as a dot-atom if it is one, else as an RFC 5321
// §4.1.2 Quoted-string with '"' and '\' escaped as quoted-pairSMTP.
func quoteLocal(local string) string {
	if checkDotAtom(local, "") == "" {
		return local
	}
	var b strings.Builder
	b.Grow(len(local) + 2)
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		if c := local[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(local[i])
	}
	b.WriteByte('"')
	return b.String()
}

// parseQuoted parses an RFC 5321 §4.1.2 Quoted-string at the start of s
// (extended by RFC 6531 §3.3 to allow UTF-8 in qtextSMTP). It returns the
// unquoted content and the number of bytes consumed.
//
//	Quoted-string  = DQUOTE *QcontentSMTP DQUOTE
//	QcontentSMTP   = qtextSMTP / quoted-pairSMTP
//	quoted-pairSMTP = %d92 %d32-126
//	qtextSMTP      = %d32-33 / %d35-91 / %d93-126 / UTF8-non-ascii
func parseQuoted(s string) (content string, n int, reason string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1, ""
		case c == '\\':
			if i+1 == len(s) {
				return "", 0, "unterminated quoted local part: missing closing \""
			}
			i++
			if e := s[i]; e < 32 || e > 126 {
				return "", 0, "invalid backslash escape in quoted local part: only printable ASCII may follow \\"
			}
			b.WriteByte(s[i])
		default:
			// Control characters were rejected by checkText; everything
			// else (space, printable ASCII, UTF-8) is qtextSMTP.
			b.WriteByte(c)
		}
	}
	return "", 0, "unterminated quoted local part: missing closing \""
}

// checkDotAtom checks RFC 5322 §3.2.3 dot-atom-text, with RFC 6531 §3.3
// UTF8-non-ascii allowed in atext. what names the part for the message; the
// result is "" when s is valid.
func checkDotAtom(s, what string) string {
	if s == "" {
		return "missing " + what + " before @"
	}
	if s[0] == '.' {
		return what + " starts with a dot"
	}
	if s[len(s)-1] == '.' {
		return what + " ends with a dot"
	}
	if strings.Contains(s, "..") {
		return what + " has two dots in a row"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < utf8.RuneSelf && c != '.' && !isAtext(c) {
			return what + " has a character that needs quoting"
		}
	}
	return ""
}

// isAtext reports whether the ASCII byte c is atext (RFC 5322 §3.2.3).
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// badLocalChar explains why an ASCII byte cannot appear in an unquoted
// local part.
func badLocalChar(c byte) string {
	switch c {
	case ' ':
		return "contains a space: spaces are only allowed inside a quoted local part"
	case '"':
		return "quotes must enclose the whole local part, like \"john doe\"@example.com"
	}
	return fmt.Sprintf("character %q is not allowed in an unquoted local part", c)
}

// checkText rejects what must never be in an address, wherever it is:
// invalid UTF-8, control characters (C0, DEL, C1), line
// and paragraph separators, invisible format characters (bidi overrides,
// zero-width characters: they make two addresses look alike), and Unicode
// spaces other than U+0020 except at the ends, where they are trimmed.
func checkText(s string) string {
	// Fast path for the common case, printable ASCII.
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return ""
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8 text"
	}
	trimmed := strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) && !unicode.IsControl(r) })
	for _, r := range s {
		switch {
		case r == '\r' || r == '\n':
			return "contains a line break (CR or LF)"
		case r == 0:
			return "contains a NUL character"
		case unicode.IsControl(r):
			return fmt.Sprintf("contains a control character (%U)", r)
		case r == '\u2028' || r == '\u2029':
			return fmt.Sprintf("contains a line separator (%U)", r)
		case unicode.Is(unicode.Cf, r):
			return fmt.Sprintf("contains an invisible formatting character (%U)", r)
		}
	}
	for _, r := range trimmed {
		if r != ' ' && unicode.IsSpace(r) {
			return fmt.Sprintf("contains an unusual space character (%U)", r)
		}
	}
	return ""
}

// checkUnicodeLocal rejects, in a UTF-8 local part (RFC 6531 §3.3), code
// points that no mailbox provider issues and that display as nothing or as
// a box: unassigned and private-use code points, surrogates, U+FFFD.
func checkUnicodeLocal(s string) string {
	if isASCII(s) {
		return ""
	}
	for _, r := range s {
		if r == utf8.RuneError || unicode.Is(unicode.Co, r) || !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs) {
			return fmt.Sprintf("local part contains an unusable character (%U)", r)
		}
	}
	return ""
}

// outsideQuotes looks at s outside any quoted section and recognises the
// forms people paste that are not an addr-spec, so that the error says what
// to do rather than which character was unexpected.
func outsideQuotes(s string) string {
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inQuote {
			switch c {
			case '\\':
				i++
			case '"':
				inQuote = false
			}
			continue
		}
		switch c {
		case '"':
			inQuote = true
		case '<', '>':
			return reasonDisplayName
		case '(', ')':
			return reasonComment
		case ',', ';':
			return fmt.Sprintf("contains %q outside quotes: put only one address per row", c)
		}
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
