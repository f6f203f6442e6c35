package render

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
)

var fixedNow = func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600)) }

// part is one decoded leaf of a parsed message.
type part struct {
	ContentType string // media type only
	Charset     string
	Encoding    string // Content-Transfer-Encoding as sent
	Filename    string // from Content-Disposition, decoded
	Body        []byte // transfer-decoded
}

// checkWire asserts the SMTP-level invariants every rendered message must
// keep: CR and LF only as CRLF pairs, no line over 998 octets
// (RFC 5322 §2.1.1), and the data ends with CRLF.
func checkWire(t testing.TB, data []byte) {
	t.Helper()
	for i, b := range data {
		switch b {
		case '\r':
			if i+1 >= len(data) || data[i+1] != '\n' {
				t.Fatalf("bare CR at offset %d: %q", i, around(data, i))
			}
		case '\n':
			if i == 0 || data[i-1] != '\r' {
				t.Fatalf("bare LF at offset %d: %q", i, around(data, i))
			}
		}
	}
	for n, l := range bytes.Split(data, []byte("\r\n")) {
		if len(l) > 998 {
			t.Fatalf("line %d is %d octets long", n+1, len(l))
		}
	}
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		t.Fatalf("message does not end with CRLF")
	}
}

func around(b []byte, i int) []byte {
	return b[max(0, i-20):min(len(b), i+20)]
}

// parseMessage parses rendered data with net/mail and mime/multipart and
// returns the top-level header and every leaf part, decoded.
func parseMessage(t testing.TB, data []byte) (mail.Header, []part) {
	t.Helper()
	checkWire(t, data)
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v\n%s", err, data)
	}
	parts := leaves(t, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body)
	return msg.Header, parts
}

func leaves(t testing.TB, ctype, cte, disp string, body io.Reader) []part {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		t.Fatalf("Content-Type %q: %v", ctype, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		var out []part
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatalf("multipart: %v", err)
			}
			out = append(out, leaves(t, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), p)...)
		}
	}
	var r io.Reader = body
	switch strings.ToLower(cte) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	case "7bit", "":
	default:
		t.Fatalf("unexpected Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s part: %v", cte, err)
	}
	p := part{ContentType: mt, Charset: params["charset"], Encoding: cte, Body: b}
	if disp != "" {
		_, dp, err := mime.ParseMediaType(disp)
		if err != nil {
			t.Fatalf("Content-Disposition %q: %v", disp, err)
		}
		p.Filename = dp["filename"]
	}
	return []part{p}
}

// decodeHeader decodes RFC 2047 words in an unstructured header value.
func decodeHeader(t testing.TB, v string) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		t.Fatalf("decoding %q: %v", v, err)
	}
	return s
}

func mustParse(t testing.TB, src Source, opt Options) *Template {
	t.Helper()
	if opt.Now == nil {
		opt.Now = fixedNow
	}
	tp, err := Parse(src, opt)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return tp
}

func mustRender(t testing.TB, tp *Template, r Recipient) *Message {
	t.Helper()
	m, err := tp.Render(r, "", nil)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return m
}

func headerKeys(h mail.Header) []string {
	var keys []string
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// crlf turns "\n" into "\r\n" for expected bodies.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
