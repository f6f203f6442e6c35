package render

import (
	"bytes"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

type headerKind int

const (
	hdrText    headerKind = iota // unstructured: RFC 2047 encoded when needed
	hdrAddress                   // address-list: parsed and re-formatted by net/mail
)

// Header lines are folded at 78 characters where a space allows it and never
// exceed 998 (RFC 5322 §2.1.1, §2.2.3).
const (
	foldAt        = 78
	maxLine       = 998
	maxHeaderSize = 64 << 10 // one rendered header value
)

type header struct {
	name  string // as written in the file
	kind  headerKind
	line  int
	fixed string             // complete "Name: value\r\n" when not a template
	tmpl  *template.Template // otherwise
	plain plainTemplate      // tmpl's plain form, nil when it has none
	from  bool               // the From header: To is added after it
	to    bool               // the To header
}

// Headers mailout writes itself; the file's copies are dropped (the MIME
// structure and these identifiers are mailout's to decide).
var droppedHeaders = map[string]bool{
	"date": true, "message-id": true, "mime-version": true,
	"content-type": true, "content-transfer-encoding": true, "content-disposition": true,
}

// Headers that may appear at most once (RFC 5322 §3.6, the table).
var onceHeaders = map[string]bool{
	"from": true, "sender": true, "reply-to": true, "to": true, "cc": true,
	"in-reply-to": true, "references": true, "subject": true, envFromHeader: true,
}

// envFromHeader overrides the envelope sender; it is not written out.
const envFromHeader = "x-mailout-envelope-from"

func isAddressHeader(lower string) bool {
	switch lower {
	case "from", "sender", "to", "cc", "reply-to":
		return true
	}
	return false
}

// parseHeaders reads the header section of the message file and returns the
// body template text and the line it starts on.
func (t *Template) parseHeaders(src []byte, refs *refSet) (string, int, error) {
	s := string(normalizeLF(src))
	s = strings.TrimPrefix(s, "\uFEFF")
	type raw struct {
		name, value string
		line        int
	}
	var raws []raw
	lineNo := 0
	body, bodyLine := "", 0
	for len(s) > 0 {
		var l string
		l, s, _ = strings.Cut(s, "\n")
		lineNo++
		if l == "" {
			body, bodyLine = s, lineNo+1
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			if len(raws) == 0 {
				return "", 0, &Error{File: t.textName, Line: lineNo, Msg: "the file must start with a header such as From:"}
			}
			// Unfolding, RFC 5322 §2.2.3: remove the line break, keep the WSP.
			raws[len(raws)-1].value += l
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || !validHeaderName(name) {
			return "", 0, &Error{File: t.textName, Line: lineNo, Msg: fmt.Sprintf("%q is not a header line (Name: value); put a blank line between the headers and the body", truncate(l, 40))}
		}
		raws = append(raws, raw{name: name, value: value, line: lineNo})
	}
	seen := map[string]bool{}
	for _, r := range raws {
		lower := strings.ToLower(r.name)
		if seen[lower] && onceHeaders[lower] {
			return "", 0, &Error{File: t.textName, Line: r.line, Msg: fmt.Sprintf("%s: header given twice", r.name)}
		}
		seen[lower] = true
		value := strings.TrimSpace(r.value)
		switch {
		case droppedHeaders[lower]:
			continue
		case t.oneClick && (lower == "list-unsubscribe" || lower == "list-unsubscribe-post"):
			// mailout writes these itself, per recipient.
			continue
		case lower == "bcc":
			return "", 0, &Error{File: t.textName, Line: r.line, Msg: "Bcc is not supported: every recipient gets a message of their own"}
		case lower == "from" || lower == envFromHeader:
			// The sender address is fixed for the campaign,
			// never built from merge data.
			if strings.Contains(value, "{{") {
				return "", 0, &Error{File: t.textName, Line: r.line, Msg: r.name + ": must not contain template actions"}
			}
			addrs, err := formatAddresses(value, "")
			if err != nil || len(addrs) != 1 {
				return "", 0, &Error{File: t.textName, Line: r.line, Msg: fmt.Sprintf("%s: need exactly one address: %v", r.name, errOr(err, "found several"))}
			}
			if lower == envFromHeader {
				t.envFrom = envelopeAddress(addrs[0])
				continue
			}
			t.fromAddr = envelopeAddress(addrs[0])
			if t.envFrom == "" {
				t.envFrom = envelopeAddress(addrs[0])
			}
			if t.idDomain == "" {
				t.idDomain = addrs[0].Address[strings.LastIndexByte(addrs[0].Address, '@')+1:]
			}
		}
		h := &header{name: r.name, line: r.line, from: lower == "from", to: lower == "to"}
		if isAddressHeader(lower) {
			h.kind = hdrAddress
		}
		if lower == "to" {
			t.hasTo = true
		}
		if !strings.Contains(value, "{{") {
			f, err := formatHeader(h.name, h.kind, value, "")
			if err != nil {
				return "", 0, &Error{File: t.textName, Line: r.line, Msg: err.Error()}
			}
			h.fixed = f
		} else {
			tt, err := parseText(t.textName, r.line, value, refs)
			if err != nil {
				return "", 0, err
			}
			h.tmpl = tt
			h.plain = compilePlain(tt)
		}
		t.headers = append(t.headers, h)
	}
	if !seen["from"] {
		return "", 0, &Error{File: t.textName, Msg: "no From: header"}
	}
	return body, bodyLine, nil
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// validHeaderName: field-name = 1*ftext, printable US-ASCII except ":"
// (RFC 5322 §3.6.8).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

// writeHeaders writes the header section up to, not including, the MIME
// content headers of the top-level part.
func (t *Template) writeHeaders(w *capWriter, in *instance, r Recipient, messageID string, data map[string]string) error {
	// RFC 5322 §3.3 date-time, §3.6.1 orig-date.
	if _, err := w.WriteString("Date: " + t.now().Format(time.RFC1123Z) + "\r\n"); err != nil {
		return err
	}
	sb := t.scratch.Get().(*bytes.Buffer)
	defer t.scratch.Put(sb)
	for i, h := range t.headers {
		f := h.fixed
		if h.tmpl != nil {
			sb.Reset()
			var tmpl *template.Template
			if in != nil {
				tmpl = in.headers[i]
			}
			if err := execute(tmpl, h.plain, &capWriter{buf: sb, limit: maxHeaderSize}, data); err != nil {
				return templateErr(t.textName, err)
			}
			if h.kind == hdrAddress && len(bytes.TrimSpace(sb.Bytes())) == 0 {
				// An address header whose merge value is empty is left
				// out; an empty To falls back to the recipient.
				if h.to {
					if _, err := w.WriteString("To: " + r.Email + "\r\n"); err != nil {
						return err
					}
				}
				continue
			}
			var err error
			if f, err = formatHeader(h.name, h.kind, sb.String(), r.Email); err != nil {
				return &Error{File: t.textName, Line: h.line, Msg: err.Error()}
			}
		}
		if _, err := w.WriteString(f); err != nil {
			return err
		}
		if h.from && !t.hasTo {
			// RFC 5322 §3.6.3; the address was checked by checkEmail.
			if _, err := w.WriteString("To: " + r.Email + "\r\n"); err != nil {
				return err
			}
		}
	}
	if t.oneClick && r.Unsubscribe != "" {
		if err := writeOneClick(w, r); err != nil {
			return err
		}
	}
	// RFC 5322 §3.6.4 msg-id; RFC 2045 §4 MIME-Version.
	_, err := w.WriteString("Message-ID: <" + messageID + ">\r\nMIME-Version: 1.0\r\n")
	return err
}

// formatHeader renders "Name: value\r\n" safely: whatever value holds, the
// result is one header field with CRLF only at folds and at the end. rcpt
// is the envelope recipient, or "".
func formatHeader(name string, kind headerKind, value, rcpt string) (string, error) {
	value = strings.ToValidUTF8(value, "\uFFFD")
	if kind == hdrAddress {
		addrs, err := formatAddresses(value, rcpt)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		parts := make([]string, len(addrs))
		for i, a := range addrs {
			// net/mail quotes or RFC 2047-encodes the display name.
			parts[i] = a.String()
		}
		value = strings.Join(parts, ", ")
	} else {
		value = strings.TrimSpace(value)
		if needsEncoding(value) {
			value = encodeWords(value)
		}
	}
	return fold(name, value)
}

// needsEncoding reports whether an unstructured value holds anything but
// printable ASCII, space and tab: CR, LF, other controls, 8-bit text.
func needsEncoding(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < ' ' && b != '\t') || b >= 0x7f {
			return true
		}
	}
	return false
}

// encodeWords RFC 2047-encodes a whole unstructured value: Q for mostly
// ASCII text, B when more than a third of it is 8-bit. CR and LF become
// =0D=0A inside encoded words and can no longer break the header.
func encodeWords(s string) string {
	high := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			high++
		}
	}
	if high*3 > len(s) {
		return mime.BEncoding.Encode("utf-8", s)
	}
	return mime.QEncoding.Encode("utf-8", s)
}

// formatAddresses parses an address list and returns it with A-label
// domains. Control characters (CR/LF from merge data) are turned into
// spaces first; net/mail then either rejects the list or the display names
// are re-encoded on output. A UTF-8 local part is taken only for rcpt, the
// envelope recipient: its message needs SMTPUTF8 anyway (RFC 6531, decided
// on the envelope), so the header may carry it too (RFC 6532 §3.2).
func formatAddresses(value, rcpt string) ([]*mail.Address, error) {
	value = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, value)
	if strings.TrimSpace(value) == "" {
		return nil, fmt.Errorf("no address")
	}
	addrs, err := mail.ParseAddressList(value)
	if err != nil {
		// `{{.name}} <{{.email}}>` with a name holding ",", ":", "@" or a
		// quote is not valid RFC 5322, but its meaning is plain: take all
		// text before the last "<" as the display name; net/mail re-quotes
		// or encodes it on output.
		lt := strings.LastIndexByte(value, '<')
		if lt < 0 || !strings.HasSuffix(strings.TrimSpace(value), ">") {
			return nil, fmt.Errorf("invalid address list: %w", err)
		}
		spec := strings.TrimSpace(value[lt:])
		a, err2 := mail.ParseAddress(spec)
		if err2 != nil {
			return nil, fmt.Errorf("invalid address list: %w", err)
		}
		name := strings.TrimSpace(value[:lt])
		if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
			name = name[1 : len(name)-1]
		}
		a.Name = strings.Join(strings.Fields(name), " ")
		addrs = []*mail.Address{a}
	}
	for _, a := range addrs {
		at := strings.LastIndexByte(a.Address, '@')
		local, domain := a.Address[:at], a.Address[at+1:]
		d, err := asciiDomain(domain)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", a.Address, err)
		}
		for i := 0; i < len(local); i++ {
			if local[i] >= 0x80 && (rcpt == "" || local+"@"+d != rcpt) {
				return nil, fmt.Errorf("%q: non-ASCII local part needs SMTPUTF8, not supported", a.Address)
			}
		}
		a.Address = local + "@" + d
	}
	return addrs, nil
}

// envelopeAddress is a's address as it goes into MAIL FROM: a local part
// that is not a dot-atom keeps its quotes (RFC 5321 §4.1.2), which
// net/mail removes when it parses ("john doe"@example.com).
func envelopeAddress(a *mail.Address) string {
	s := (&mail.Address{Address: a.Address}).String()
	return strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
}

// asciiDomain returns the A-label form of a domain (RFC 5890), so headers
// stay 7-bit.
func asciiDomain(d string) (string, error) {
	if d == "" || d[0] == '[' {
		return d, nil // address literal, as given
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("invalid domain %q: %w", d, err)
	}
	return a, nil
}

// fold writes "Name: value" as lines of at most 78 characters where a space
// allows a break, by inserting CRLF before a space (RFC 5322 §2.2.3). A line
// over 998 octets is an error: only encoded text could be split, and
// unstructured 8-bit text already is.
func fold(name, value string) (string, error) {
	var b strings.Builder
	b.Grow(len(name) + len(value) + 8)
	b.WriteString(name)
	b.WriteString(":")
	lineLen := len(name) + 1
	first := true
	for len(value) > 0 {
		// Next segment: up to (not including) the last WSP of the next run
		// of WSP, so that every fold starts a line with exactly one WSP
		// followed by text.
		end := len(value)
		for i := 1; i < len(value)-1; i++ {
			if isWSP(value[i]) && !isWSP(value[i+1]) {
				end = i
				break
			}
		}
		seg := value[:end]
		value = value[end:]
		if first {
			if lineLen+1+len(seg) > foldAt && strings.HasPrefix(seg, "=?") {
				// An encoded word that does not fit beside the name goes on
				// the next line (RFC 2047 §2: lines with encoded words
				// should stay within 76 characters).
				b.WriteString("\r\n")
				lineLen = 0
			}
			b.WriteString(" ")
			lineLen++
			first = false
		} else if lineLen+len(seg) > foldAt {
			b.WriteString("\r\n")
			lineLen = 0
		}
		b.WriteString(seg)
		lineLen += len(seg)
		if lineLen > maxLine {
			return "", fmt.Errorf("%s: a word is too long for a header line (RFC 5322 §2.1.1)", name)
		}
	}
	b.WriteString("\r\n")
	return b.String(), nil
}

func isWSP(b byte) bool { return b == ' ' || b == '\t' }

// checkEmail makes sure the recipient address can go into a header and the
// envelope as is (validate, don't format-and-hope).
func checkEmail(s string) error {
	if s == "" || len(s) > 254 || !utf8.ValidString(s) {
		return fmt.Errorf("render: %w: address %q", ErrBadRecipient, truncate(s, 64))
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x21 && b != ' ' || b == 0x7f || b == '<' || b == '>' {
			return fmt.Errorf("render: %w: address %q holds a control character or angle bracket", ErrBadRecipient, truncate(s, 64))
		}
	}
	a, err := mail.ParseAddress("<" + s + ">")
	if err != nil || a.Name != "" || strings.IndexByte(s, '@') < 1 {
		return fmt.Errorf("render: %w: address %q is not an addr-spec", ErrBadRecipient, truncate(s, 64))
	}
	return nil
}

// checkMessageID accepts a msg-id body: id-left "@" id-right of printable
// ASCII without angle brackets (RFC 5322 §3.6.4).
func checkMessageID(s string) error {
	if len(s) > 250 || strings.Count(s, "@") != 1 || s[0] == '@' || s[len(s)-1] == '@' {
		return fmt.Errorf("render: %w: Message-ID %q", ErrBadRecipient, truncate(s, 64))
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x21 || b > 0x7e || b == '<' || b == '>' {
			return fmt.Errorf("render: %w: Message-ID %q", ErrBadRecipient, truncate(s, 64))
		}
	}
	return nil
}

// writeOneClick writes the one-click unsubscribe headers: the https link,
// then the mailto: address when there is one (RFC 2369 §3.2: the
// preferred URI first, each in angle brackets), and the one-click POST
// marker (RFC 8058 §3.1: List-Unsubscribe must hold an https URI, and
// List-Unsubscribe-Post exactly "List-Unsubscribe=One-Click"). DKIM signs
// both (dkim.DefaultHeaders), as RFC 8058 §4 requires.
func writeOneClick(w *capWriter, r Recipient) error {
	if !validURIChars(r.Unsubscribe) {
		return fmt.Errorf("render: %w: unsubscribe link %q", ErrBadRecipient, truncate(r.Unsubscribe, 64))
	}
	v := "<" + r.Unsubscribe + ">"
	if r.UnsubscribeMailto != "" {
		if err := checkEmail(r.UnsubscribeMailto); err != nil {
			return err
		}
		v += ", <mailto:" + r.UnsubscribeMailto + "?subject=unsubscribe>"
	}
	f, err := fold("List-Unsubscribe", v)
	if err != nil {
		return err
	}
	if _, err := w.WriteString(f); err != nil {
		return err
	}
	_, err = w.WriteString("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
	return err
}

// validURIChars: printable ASCII without space, angle brackets or quotes
// (RFC 3986 §2), so a link cannot end the header or the bracket early.
func validURIChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '<' || s[i] == '>' || s[i] == '"' {
			return false
		}
	}
	return true
}
