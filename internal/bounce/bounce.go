// Package bounce reads the messages that come back to a campaign's return
// path: delivery status notifications (RFC 3464 multipart/report with RFC
// 3463 status codes), the common non-standard bounces (Exim, qmail, older
// Exchange, Gmail, Yahoo) and feedback-loop complaints (ARF, RFC 5965).
//
// Place in the flow: bounces fetch (mailbox) -> bounce.Parse -> match by
// VERP token or Message-ID -> store. Parse is pure: no I/O, no clock. It
// classifies each failed recipient with outcome.ClassifyBounce, the same
// taxonomy as a synchronous reply, so a bounce and a refusal at RCPT say
// the same thing in reports.
package bounce

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"

	"mailout/internal/outcome"
	"mailout/internal/verp"
)

// MaxSize is the largest message Parse reads; the rest is ignored.
const MaxSize = 4 << 20

// maxDepth bounds the nesting of multipart bodies Parse follows.
const maxDepth = 8

// ErrNotBounce is returned by Parse for a message it does not recognise as
// a bounce or a complaint (an auto-reply, a human answer, spam): such a
// message is kept for review.
var ErrNotBounce = errors.New("bounce: not a recognised bounce or complaint")

// ErrMalformed is returned by Parse for a message that cannot be read as
// RFC 5322 at all.
var ErrMalformed = errors.New("bounce: malformed message")

// Kind is what a report says happened.
type Kind string

const (
	// Failure: the message could not be delivered (the recipients say
	// whether for good).
	Failure Kind = "failure"
	// Delay: delivery is still being tried (RFC 3464 Action: delayed).
	Delay Kind = "delay"
	// Complaint: the recipient reported the message as spam (ARF).
	Complaint Kind = "complaint"
)

// Format is the form the report came in.
type Format string

const (
	FormatDSN      Format = "rfc3464"
	FormatARF      Format = "arf"
	FormatExim     Format = "exim"
	FormatQmail    Format = "qmail"
	FormatExchange Format = "exchange"
	FormatGmail    Format = "gmail"
	FormatYahoo    Format = "yahoo"
)

// Report is one parsed bounce or complaint.
type Report struct {
	Kind   Kind
	Format Format
	// Recipients are the addresses the report is about (one for a
	// complaint).
	Recipients []Recipient
	// Token is the VERP token of the address the report was sent to
	// (To, Delivered-To, X-Original-To, or for a complaint the original's
	// Original-Mail-From or Return-Path), "" when there is none. It is not
	// verified here.
	Token string
	// MessageID is the original message's Message-ID without angle
	// brackets, when the report quotes it.
	MessageID string
	// FeedbackType is the ARF Feedback-Type ("abuse", …) of a complaint.
	FeedbackType string
}

// Recipient is one address of a report.
type Recipient struct {
	// Address is the failed recipient (RFC 3464 Final-Recipient, or
	// Original-Recipient when it is given).
	Address string
	// Action is the RFC 3464 action: "failed", "delayed", … ("failed" for
	// a non-standard bounce that says it is permanent).
	Action string
	// Status is the RFC 3463 status code ("5.1.1"), Code the remote
	// server's reply code (0 when the report has none).
	Status string
	Code   int
	// Diagnostic is the remote server's reply text, or the report's words.
	Diagnostic string
	// RemoteMTA is the server that refused, when named.
	RemoteMTA string
	// Result is the classification, as for a synchronous reply.
	Result outcome.Result
	// Hard: the delivery failed for good (a permanent failure, not a
	// delay). Whether the address should be suppressed is
	// outcome.SuppressesAddress(Result.Class).
	Hard bool
}

// Parse reads one message. It returns ErrNotBounce for a message that is
// neither a bounce nor a complaint, ErrMalformed for one that is not a
// message.
func Parse(raw []byte) (*Report, error) {
	if len(raw) > MaxSize {
		raw = raw[:MaxSize]
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	body, _ := io.ReadAll(msg.Body)
	h := textproto.MIMEHeader(msg.Header)
	p := &parser{}
	p.walk(h, body, 0)
	rep := p.report(h)
	if rep == nil {
		return nil, ErrNotBounce
	}
	rep.Token = tokenOf(h)
	if rep.Token == "" && p.origHeader != nil {
		// A complaint goes to the feedback address, not the return path:
		// the original's envelope sender carries the token.
		rep.Token = tokenOf(p.origHeader)
		if rep.Token == "" {
			rep.Token = tokenFrom(p.fields("Original-Mail-From"))
		}
	}
	if rep.Token == "" {
		rep.Token = tokenFrom(p.fields("Original-Mail-From"))
	}
	for i := range rep.Recipients {
		r := &rep.Recipients[i]
		r.Address = cleanAddr(r.Address)
		r.Diagnostic = strings.Join(strings.Fields(r.Diagnostic), " ")
		if r.Action == "" {
			r.Action = "failed"
		}
		if rep.Kind == Complaint {
			continue
		}
		r.Result = outcome.ClassifyBounce(r.Code, r.Status, r.Diagnostic)
		r.Hard = strings.EqualFold(r.Action, "failed") && r.Result.Kind == outcome.KindPermanent
	}
	if rep.Kind == Failure && len(rep.Recipients) > 0 && allDelayed(rep.Recipients) {
		rep.Kind = Delay
	}
	return rep, nil
}

func allDelayed(rs []Recipient) bool {
	for _, r := range rs {
		if !strings.EqualFold(r.Action, "delayed") {
			return false
		}
	}
	return true
}

// parser collects what the parts of a message say.
type parser struct {
	dsn        []textproto.MIMEHeader // delivery-status: per-message, then per-recipient
	arf        textproto.MIMEHeader   // feedback-report fields
	origHeader textproto.MIMEHeader   // the original message's header
	text       []string               // text/plain parts (decoded)
}

func (p *parser) fields(name string) string {
	if p.arf != nil {
		if v := p.arf.Get(name); v != "" {
			return v
		}
	}
	return ""
}

func (p *parser) walk(h textproto.MIMEHeader, body []byte, depth int) {
	if depth > maxDepth {
		return
	}
	ct := h.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || ct == "" {
		mt = "text/plain"
	}
	body = decode(h.Get("Content-Transfer-Encoding"), body)
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		b := params["boundary"]
		if b == "" {
			return
		}
		mr := multipart.NewReader(bytes.NewReader(body), b)
		for {
			part, err := mr.NextRawPart()
			if err != nil {
				return
			}
			pb, _ := io.ReadAll(io.LimitReader(part, MaxSize))
			p.walk(part.Header, pb, depth+1)
		}
	case mt == "message/delivery-status" || mt == "message/global-delivery-status":
		// RFC 3464 §2.1: a block of per-message fields, then one block per
		// recipient, each like a header, separated by blank lines.
		p.dsn = append(p.dsn, readBlocks(body)...)
	case mt == "message/feedback-report":
		// RFC 5965 §3.1: one block of fields.
		if bs := readBlocks(body); len(bs) > 0 {
			p.arf = bs[0]
		}
	case mt == "message/rfc822" || mt == "text/rfc822-headers" || mt == "message/rfc822-headers" || mt == "message/global":
		if p.origHeader == nil {
			if hb := readBlocks(body); len(hb) > 0 {
				p.origHeader = hb[0]
			}
		}
	case mt == "text/plain" || mt == "":
		p.text = append(p.text, string(body))
	}
}

// readBlocks reads header-like blocks separated by blank lines.
func readBlocks(b []byte) []textproto.MIMEHeader {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	var out []textproto.MIMEHeader
	for _, chunk := range bytes.Split(b, []byte("\n\n")) {
		chunk = bytes.TrimLeft(chunk, "\n")
		if len(bytes.TrimSpace(chunk)) == 0 {
			continue
		}
		r := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(chunk, '\n', '\n'))))
		h, err := r.ReadMIMEHeader()
		if len(h) > 0 {
			out = append(out, h)
		}
		if err != nil && len(h) == 0 {
			continue
		}
	}
	return out
}

func decode(cte string, b []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, b)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, _ := base64.StdEncoding.Decode(out, clean)
		return out[:n]
	case "quoted-printable":
		out, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
		return out
	}
	return b
}

func (p *parser) report(h textproto.MIMEHeader) *Report {
	if p.arf != nil {
		return p.complaint()
	}
	if rs := p.dsnRecipients(); len(rs) > 0 {
		return &Report{Kind: Failure, Format: FormatDSN, Recipients: rs, MessageID: p.messageID()}
	}
	text := strings.Join(p.text, "\n")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	for _, f := range textFormats {
		if !f.match(h, text) {
			continue
		}
		rs := f.parse(h, text)
		if len(rs) == 0 {
			continue
		}
		rep := &Report{Kind: Failure, Format: f.format, Recipients: rs, MessageID: p.messageID()}
		if rep.MessageID == "" {
			rep.MessageID = quotedMessageID(text)
		}
		return rep
	}
	return nil
}

func (p *parser) complaint() *Report {
	rep := &Report{Kind: Complaint, Format: FormatARF, FeedbackType: strings.ToLower(strings.TrimSpace(p.arf.Get("Feedback-Type"))),
		MessageID: p.messageID()}
	addr := p.arf.Get("Original-Rcpt-To")
	if addr == "" && p.origHeader != nil {
		addr = p.origHeader.Get("To")
	}
	if addr = cleanAddr(addr); addr != "" {
		rep.Recipients = []Recipient{{Address: addr, Action: "complaint", Diagnostic: "complaint: " + rep.FeedbackType}}
	}
	return rep
}

func (p *parser) messageID() string {
	if p.origHeader == nil {
		return ""
	}
	return strings.Trim(strings.TrimSpace(p.origHeader.Get("Message-Id")), "<>")
}

func (p *parser) dsnRecipients() []Recipient {
	var out []Recipient
	var remote string
	for _, b := range p.dsn {
		if b.Get("Final-Recipient") == "" && b.Get("Original-Recipient") == "" {
			continue
		}
		r := Recipient{
			Address:   typed(b.Get("Original-Recipient")),
			Action:    strings.ToLower(strings.TrimSpace(b.Get("Action"))),
			Status:    statusOf(b.Get("Status")),
			RemoteMTA: typed(b.Get("Remote-Mta")),
		}
		if r.Address == "" || !strings.Contains(r.Address, "@") {
			r.Address = typed(b.Get("Final-Recipient"))
		}
		if r.RemoteMTA == "" {
			r.RemoteMTA = remote
		}
		diag := b.Get("Diagnostic-Code")
		if kind, v, ok := strings.Cut(diag, ";"); ok && strings.EqualFold(strings.TrimSpace(kind), "smtp") {
			r.Code, r.Diagnostic = replyOf(v)
		} else {
			r.Diagnostic = typed(diag)
		}
		if r.Diagnostic == "" {
			r.Diagnostic = "status " + r.Status
		}
		if r.Action == "delivered" || r.Action == "relayed" || r.Action == "expanded" {
			// RFC 3464 §2.3.3: success notices are no bounce.
			continue
		}
		out = append(out, r)
	}
	return out
}

// typed returns the value of a "type; value" field (RFC 3464 §2.3.2).
func typed(v string) string {
	if _, after, ok := strings.Cut(v, ";"); ok {
		return strings.TrimSpace(after)
	}
	return strings.TrimSpace(v)
}

var statusRe = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)

// statusOf returns the RFC 3463 status code in v (class.subject.detail).
func statusOf(v string) string {
	return statusRe.FindString(v)
}

var replyRe = regexp.MustCompile(`(?s)^\s*([245]\d\d)(?:[ -]+|$)(?:([245]\.\d{1,3}\.\d{1,3})\s*)?(.*)$`)

// replyOf splits an SMTP reply ("550 5.1.1 text" or "550-5.1.1 text")
// into its code and text (the text keeps the enhanced code, as the reply
// did).
func replyOf(v string) (int, string) {
	m := replyRe.FindStringSubmatch(v)
	if m == nil {
		return 0, strings.TrimSpace(v)
	}
	code, _ := strconv.Atoi(m[1])
	return code, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), m[1]))
}

var midRe = regexp.MustCompile(`(?im)^Message-ID:\s*<([^>\s]+)>`)

// quotedMessageID finds the Message-ID of an original message quoted in a
// bounce's text.
func quotedMessageID(text string) string {
	if m := midRe.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	return ""
}

func tokenOf(h textproto.MIMEHeader) string {
	for _, name := range []string{"Delivered-To", "X-Original-To", "Envelope-To", "Return-Path", "To"} {
		for _, v := range h.Values(name) {
			if t := tokenFrom(v); t != "" {
				return t
			}
		}
	}
	return ""
}

func tokenFrom(v string) string {
	a := cleanAddr(v)
	if a == "" {
		return ""
	}
	t, err := verp.TokenOf(a)
	if err != nil {
		return ""
	}
	return t
}

// cleanAddr returns the bare address of v ("Name <a@b>", "<a@b>", "a@b").
func cleanAddr(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if a, err := mail.ParseAddress(v); err == nil {
		return a.Address
	}
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return strings.TrimSpace(v[i+1 : i+j])
		}
	}
	if f := strings.Fields(v); len(f) > 0 {
		return strings.Trim(f[0], "<>:,;")
	}
	return ""
}
