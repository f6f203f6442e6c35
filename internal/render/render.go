// Package render turns a campaign's message template and one recipient into
// the bytes handed to SMTP DATA and the envelope that goes with them.
//
// Place in the flow: recipient (fields) + campaign template -> render.Render
// -> *Message (envelope From/To, Message-ID, RFC 5322 bytes) -> DKIM signing
// -> transport.
//
// Steps:
//
//  1. Parse reads the message file (RFC 5322 form: headers, blank line, text
//     body), the optional HTML body and the attachments once. Every header
//     value and both bodies are Go templates over the recipient's merge
//     fields; Parse checks them against an explicit function allowlist and
//     rejects constructs that can burn CPU or recurse (see check.go).
//  2. Render executes the templates for one recipient into pooled buffers
//     (output capped), then encodes: header values are RFC 2047 encoded and
//     folded, address headers re-formatted through net/mail, bodies
//     normalised to CRLF and sent 7bit or quoted-printable, attachments
//     base64, all wrapped in multipart/alternative and multipart/mixed as
//     needed (RFC 2045, RFC 2046).
//
// A merge value can never add a header, end the message early or produce a
// line longer than 998 octets (RFC 5322 §2.1.1): the output contains CR and
// LF only as CRLF pairs, whatever the data.
package render

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"
)

// DefaultMaxSize is the default cap on one rendered message (25 MiB).
const DefaultMaxSize = 25 << 20

// maxSourceSize caps each template source file; a message template is
// text written by a person, not a data file.
const maxSourceSize = 4 << 20

// ErrTooLarge is returned (wrapped) when a rendered message would exceed
// Options.MaxSize.
var ErrTooLarge = errors.New("rendered message too large")

// ErrMissingField is returned (wrapped in *Error) when the template refers to
// a merge field the recipient does not have.
var ErrMissingField = errors.New("missing merge field")

// ErrNoUnsubscribeURL is returned (wrapped in *Error) by Parse for a
// template that uses {{unsubscribe_url}} without Options.OneClick: there
// is no public URL to make the links from.
var ErrNoUnsubscribeURL = errors.New("{{unsubscribe_url}} needs a public URL")

// ErrBadRecipient is returned (wrapped) when Recipient.Email or a given
// Message-ID cannot be put in a header safely.
var ErrBadRecipient = errors.New("invalid recipient data")

// Error is a template error located in a source file. Line is 0 when the
// error concerns the file as a whole.
type Error struct {
	File string
	Line int
	Msg  string
	Err  error // optional cause (ErrMissingField, ErrTooLarge, ...)
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Attachment is a file attached to every message of the campaign.
type Attachment struct {
	Name        string
	ContentType string // "" = detect from the extension, then the content
	Data        []byte
}

// Source is what the user wrote.
type Source struct {
	// Text is the message file: headers, a blank line, a text body. It is
	// required and carries the headers; its body may be empty when HTML is
	// given (a text part is then derived from the HTML).
	Text     []byte
	TextName string // for error messages, e.g. "message.txt"
	// HTML is an optional html/template body.
	HTML     []byte
	HTMLName string
	// Attachments are sent with every message, byte for byte.
	Attachments []Attachment
}

// Options tune Parse and Render.
type Options struct {
	// Now gives the Date header; default time.Now.
	Now func() time.Time
	// MessageIDDomain is the right side of generated Message-IDs; default
	// the domain of the From address.
	MessageIDDomain string
	// MaxSize caps one rendered message in bytes; default DefaultMaxSize.
	MaxSize int
	// OneClick: every message carries the one-click unsubscribe headers
	// of Recipient.Unsubscribe (List-Unsubscribe, List-Unsubscribe-Post),
	// which replace the template's own, and {{unsubscribe_url}} may be
	// used. Without it a template that uses {{unsubscribe_url}} does not
	// parse (ErrNoUnsubscribeURL).
	OneClick bool
	// Columns, when not nil, lists the merge fields every recipient has
	// (e.g. the CSV header). Parse then rejects a template that refers to
	// another field, naming it and its line, instead of failing at the
	// first Render.
	Columns []string
}

// Recipient is one addressee with its merge fields.
type Recipient struct {
	Email  string            // addr-spec in wire form (A-label domain)
	Fields map[string]string // merge fields by column name
	// Unsubscribe is the recipient's one-click unsubscribe link
	// (Options.OneClick): an https URL, or "" (a check render).
	Unsubscribe string
	// UnsubscribeMailto, when set with Unsubscribe, is the address
	// List-Unsubscribe also names as a mailto: URI.
	UnsubscribeMailto string
}

// Message is one rendered message.
type Message struct {
	// From is the envelope sender (MAIL FROM): the X-Mailout-Envelope-From
	// header's address when the template has one, else the From header's.
	From string
	// To is the envelope recipient (RCPT TO), Recipient.Email.
	To string
	// MessageID is the Message-ID header value without angle brackets.
	MessageID string
	// Data is the complete message with CRLF line endings, ready for DATA
	// (not dot-stuffed). When Render was given a buffer, Data aliases its
	// memory and is valid until the buffer is reused.
	Data []byte
}

// Template is a parsed campaign message, safe for concurrent Render calls.
type Template struct {
	textName, htmlName string
	headers            []*header // in file order, without the ones mailout sets
	hasTo              bool
	envFrom            string // envelope sender
	fromAddr           string // the From header's address
	idDomain           string
	now                func() time.Time
	maxSize            int

	text      *template.Template     // text body; nil when empty and HTML given
	textPlain plainTemplate          // text's plain form, nil when it has none
	textPrep  preparedText           // textPlain split for rendering, nil when it has none
	html      *htmltemplate.Template // nil when not given
	attach    []attachment
	refs      []fieldRef // every merge field referenced, first use first
	oneClick  bool       // Options.OneClick
	unsubURL  bool       // a template uses {{unsubscribe_url}}
	scratch   sync.Pool  // *bytes.Buffer for raw template output
	randRead  func([]byte) (int, error)

	// Render instances (budget.go): needed when any part runs
	// text/template. A free list under a mutex rather than a sync.Pool,
	// so that instances, whose HTML copy is escaped on first use, survive
	// garbage collections.
	needInstance bool
	instMu       sync.Mutex
	free         []*instance
}

// Parse reads and checks a campaign's message once. Errors are *Error values
// naming the file and line ("message.txt:4: …").
func Parse(src Source, opt Options) (*Template, error) {
	t := &Template{
		textName: nameOr(src.TextName, "message.txt"),
		htmlName: nameOr(src.HTMLName, "message.html"),
		now:      opt.Now,
		maxSize:  opt.MaxSize,
		oneClick: opt.OneClick,
		randRead: rand.Read,
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.maxSize <= 0 {
		t.maxSize = DefaultMaxSize
	}
	t.scratch.New = func() any { return new(bytes.Buffer) }
	if len(src.Text) > maxSourceSize {
		return nil, &Error{File: t.textName, Msg: fmt.Sprintf("file larger than %d bytes", maxSourceSize)}
	}
	if len(src.HTML) > maxSourceSize {
		return nil, &Error{File: t.htmlName, Msg: fmt.Sprintf("file larger than %d bytes", maxSourceSize)}
	}
	refs := newRefSet()
	body, bodyLine, err := t.parseHeaders(src.Text, refs)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(body) != "" || src.HTML == nil {
		tt, err := parseText(t.textName, bodyLine, body, refs)
		if err != nil {
			return nil, err
		}
		t.text = tt
		t.textPlain = compilePlain(tt)
		t.textPrep = prepareText(t.textPlain)
	}
	if src.HTML != nil {
		ht, err := parseHTML(t.htmlName, string(normalizeLF(src.HTML)), refs, t.maxSize)
		if err != nil {
			return nil, err
		}
		t.html = ht
	}
	for _, a := range src.Attachments {
		at, err := newAttachment(a)
		if err != nil {
			return nil, err
		}
		t.attach = append(t.attach, at)
	}
	t.refs = refs.list
	if refs.unsub != nil {
		if !opt.OneClick {
			u := refs.unsub
			return nil, &Error{File: u.file, Line: u.line, Err: ErrNoUnsubscribeURL,
				Msg: "{{unsubscribe_url}} needs a public URL to make the links from: give the campaign one (--public-url https://…; see docs/unsubscribe.md)"}
		}
		t.unsubURL = true
	}
	t.needInstance = t.dynamic()
	if opt.MessageIDDomain != "" {
		d, err := asciiDomain(opt.MessageIDDomain)
		if err != nil {
			return nil, fmt.Errorf("render: MessageIDDomain: %w", err)
		}
		t.idDomain = d
	}
	if opt.Columns != nil {
		fields := make(map[string]string, len(opt.Columns))
		for _, c := range opt.Columns {
			fields[c] = ""
		}
		if _, err := t.data(Recipient{Email: "x@example.com", Fields: fields}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func nameOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// FromAddress is the address of the From header: the author, whose
// domain DMARC checks.
func (t *Template) FromAddress() string { return t.fromAddr }

// EnvelopeFrom is the envelope sender (MAIL FROM) of every message, whose
// domain SPF checks, unless the campaign's return path replaces it.
func (t *Template) EnvelopeFrom() string { return t.envFrom }

// NewMessageID returns a new random, unique Message-ID without angle
// brackets: 128 random bits on the left, the template's domain on the right
// (RFC 5322 §3.6.4).
func (t *Template) NewMessageID() string {
	var b [16]byte
	if _, err := t.randRead(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms (Go 1.24+).
		panic("render: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:]) + "@" + t.idDomain
}

// Render builds the message for one recipient. messageID "" generates a new
// one; a given one is reused (a resend after a crash carries the same
// Message-ID). buf may be reused between calls; nil allocates.
func (t *Template) Render(r Recipient, messageID string, buf *bytes.Buffer) (*Message, error) {
	if err := checkEmail(r.Email); err != nil {
		return nil, err
	}
	if messageID == "" {
		messageID = t.NewMessageID()
	} else if err := checkMessageID(messageID); err != nil {
		return nil, err
	}
	data, err := t.data(r)
	if err != nil {
		return nil, err
	}
	in, err := t.getInstance()
	if err != nil {
		return nil, err
	}
	defer t.putInstance(in)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	w := &capWriter{buf: buf, limit: t.maxSize}
	if err := t.writeHeaders(w, in, r, messageID, data); err != nil {
		return nil, err
	}
	if err := t.writeBody(w, in, data); err != nil {
		return nil, err
	}
	if buf.Len() > t.maxSize {
		return nil, fmt.Errorf("render: %w: over %d bytes", ErrTooLarge, t.maxSize)
	}
	return &Message{From: t.envFrom, To: r.Email, MessageID: messageID, Data: buf.Bytes()}, nil
}

// data builds the template data for one recipient: a plain map holding
// exactly the fields the template refers to (no methods,
// no funcs, nothing else reachable). A name is looked up as written first,
// then case-insensitively; "email" is always the recipient's address.
func (t *Template) data(r Recipient) (map[string]string, error) {
	m := make(map[string]string, len(t.refs))
	for _, ref := range t.refs {
		v, err := lookupField(r, ref.name)
		if err != nil {
			return nil, &Error{File: ref.file, Line: ref.line, Msg: err.Error(), Err: ErrMissingField}
		}
		m[ref.name] = v
	}
	if t.unsubURL {
		m[unsubscribeKey] = r.Unsubscribe
	}
	return m, nil
}

func lookupField(r Recipient, name string) (string, error) {
	if strings.EqualFold(name, "email") {
		return r.Email, nil
	}
	if v, ok := r.Fields[name]; ok {
		return v, nil
	}
	var found []string
	var val string
	for k, v := range r.Fields {
		if strings.EqualFold(k, name) {
			found = append(found, k)
			val = v
		}
	}
	switch len(found) {
	case 1:
		return val, nil
	case 0:
		return "", fmt.Errorf("merge field %q is not a column of this recipient (columns: %s)", name, columnList(r.Fields))
	default:
		return "", fmt.Errorf("merge field %q matches several columns (%s); write it with the exact case", name, strings.Join(found, ", "))
	}
}

func columnList(m map[string]string) string {
	cols := make([]string, 0, len(m)+1)
	cols = append(cols, "email")
	for k := range m {
		if !strings.EqualFold(k, "email") { // the address column is listed first
			cols = append(cols, k)
		}
	}
	slices.Sort(cols[1:])
	return strings.Join(cols, ", ")
}

// capWriter is a bytes.Buffer writer that refuses to grow past limit, so a
// template cannot render unbounded output.
type capWriter struct {
	buf   *bytes.Buffer
	limit int
}

func (w *capWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.limit {
		return 0, fmt.Errorf("render: %w: over %d bytes", ErrTooLarge, w.limit)
	}
	return w.buf.Write(p)
}

func (w *capWriter) WriteString(s string) (int, error) {
	if w.buf.Len()+len(s) > w.limit {
		return 0, fmt.Errorf("render: %w: over %d bytes", ErrTooLarge, w.limit)
	}
	return w.buf.WriteString(s)
}

// room is what is left of the size budget.
func (w *capWriter) room() int { return w.limit - w.buf.Len() }
