package render

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"mime"
	"net/http"
	"path/filepath"
	"strings"
	"text/template"
	"unicode/utf8"
)

// attachment is an Attachment prepared once at Parse: its part headers and
// base64 body are the same in every message.
type attachment struct {
	part []byte // headers, blank line, base64 body (CRLF)
}

const maxAttachmentName = 255

func newAttachment(a Attachment) (attachment, error) {
	name := a.Name
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ToValidUTF8(name, "\uFFFD")
	name = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if name == "" || name == "." || name == ".." {
		name = "attachment"
	}
	if len(name) > maxAttachmentName {
		return attachment{}, &Error{File: a.Name, Msg: fmt.Sprintf("attachment name longer than %d bytes", maxAttachmentName)}
	}
	ct := a.ContentType
	if ct == "" {
		ct = mime.TypeByExtension(strings.ToLower(filepath.Ext(name)))
	}
	if ct == "" {
		ct = http.DetectContentType(a.Data)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return attachment{}, &Error{File: a.Name, Msg: fmt.Sprintf("content type %q: %v", ct, err)}
	}
	// RFC 2045 §5.1 name (for old clients) and RFC 2183 filename; both are
	// RFC 2231-encoded by FormatMediaType when not plain ASCII tokens.
	params["name"] = name
	ctype := mime.FormatMediaType(mt, params)
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": name})
	var b bytes.Buffer
	for _, h := range [][2]string{{"Content-Type", ctype}, {"Content-Transfer-Encoding", "base64"}, {"Content-Disposition", disp}} {
		f, err := fold(h[0], h[1])
		if err != nil {
			return attachment{}, &Error{File: a.Name, Msg: err.Error()}
		}
		b.WriteString(f)
	}
	b.WriteString("\r\n")
	writeBase64(&b, a.Data)
	return attachment{part: b.Bytes()}, nil
}

// writeBase64 writes RFC 2045 §6.8 base64 in lines of 76 characters.
func writeBase64(b *bytes.Buffer, data []byte) {
	var line [76]byte
	for len(data) > 0 {
		n := min(len(data), 57)
		base64.StdEncoding.Encode(line[:], data[:n])
		b.Write(line[:base64.StdEncoding.EncodedLen(n)])
		b.WriteString("\r\n")
		data = data[n:]
	}
}

// writeBody writes the content headers of the top-level entity, the blank
// line and the body: a single text part, multipart/alternative (text then
// HTML, RFC 2046 §5.1.4) and multipart/mixed around it when there are
// attachments (RFC 2046 §5.1.3).
func (t *Template) writeBody(w *capWriter, in *instance, data map[string]string) error {
	textRaw := t.scratch.Get().(*bytes.Buffer)
	htmlRaw := t.scratch.Get().(*bytes.Buffer)
	norm := t.scratch.Get().(*bytes.Buffer)
	defer func() { t.scratch.Put(textRaw); t.scratch.Put(htmlRaw); t.scratch.Put(norm) }()
	textRaw.Reset()
	htmlRaw.Reset()
	if t.text != nil && t.textPrep == nil {
		var tmpl *template.Template
		if in != nil {
			tmpl = in.text
		}
		if err := execute(tmpl, t.textPlain, &capWriter{buf: textRaw, limit: w.room()}, data); err != nil {
			return templateErr(t.textName, err)
		}
	}
	if t.html != nil {
		if err := in.html.Execute(&capWriter{buf: htmlRaw, limit: w.room()}, data); err != nil {
			return templateErr(t.htmlName, err)
		}
		if t.text == nil {
			htmlToText(textRaw, htmlRaw.Bytes())
		}
	}

	var rnd [12]byte
	if _, err := t.randRead(rnd[:]); err != nil {
		return fmt.Errorf("render: boundary: %w", err)
	}
	// "=_" cannot occur in quoted-printable or base64 output, and 7bit
	// parts containing "--=_" are sent quoted-printable, so the boundaries
	// never collide with content (RFC 2046 §5.1.1).
	tag := hex.EncodeToString(rnd[:])
	mixed, alt := "=_m"+tag, "=_a"+tag

	if len(t.attach) > 0 {
		if _, err := w.WriteString("Content-Type: multipart/mixed; boundary=\"" + mixed + "\"\r\n\r\n" +
			"This is a multi-part message in MIME format.\r\n--" + mixed + "\r\n"); err != nil {
			return err
		}
	}
	if t.html != nil {
		if _, err := w.WriteString("Content-Type: multipart/alternative; boundary=\"" + alt + "\"\r\n\r\n--" + alt + "\r\n"); err != nil {
			return err
		}
		if err := t.writeText(w, norm, textRaw, data); err != nil {
			return err
		}
		if _, err := w.WriteString("\r\n--" + alt + "\r\n"); err != nil {
			return err
		}
		if err := writeTextPart(w, norm, "text/html", htmlRaw.Bytes()); err != nil {
			return err
		}
		if _, err := w.WriteString("\r\n--" + alt + "--\r\n"); err != nil {
			return err
		}
	} else if err := t.writeText(w, norm, textRaw, data); err != nil {
		return err
	}
	if len(t.attach) > 0 {
		for _, a := range t.attach {
			if _, err := w.WriteString("\r\n--" + mixed + "\r\n"); err != nil {
				return err
			}
			if _, err := w.Write(a.part); err != nil {
				return err
			}
		}
		if _, err := w.WriteString("\r\n--" + mixed + "--\r\n"); err != nil {
			return err
		}
	}
	return nil
}

// writeText writes the text/plain part: from its prepared form when it has
// one, else from raw, where writeBody executed it.
func (t *Template) writeText(w *capWriter, norm, raw *bytes.Buffer, data map[string]string) error {
	if t.textPrep != nil {
		return t.writePreparedText(w, norm, raw, "text/plain", t.textPrep, data)
	}
	return writeTextPart(w, norm, "text/plain", raw.Bytes())
}

// writeTextPart writes a text part's content headers and body. The body is
// first normalised to CRLF (every CR, LF or CRLF becomes CRLF) and made valid UTF-8; it goes 7bit when it is printable ASCII in
// lines of at most 78 characters, quoted-printable otherwise (RFC 2045 §6.7:
// lines of at most 76), so no line exceeds 998 octets (RFC 5322 §2.1.1) and
// no relay needs 8BITMIME. The body always ends with CRLF.
func writeTextPart(w *capWriter, norm *bytes.Buffer, ctype string, raw []byte) error {
	if !utf8.Valid(raw) {
		raw = bytes.ToValidUTF8(raw, []byte("\uFFFD"))
	}
	norm.Reset()
	normalizeCRLF(norm, raw)
	if n := norm.Len(); n < 2 || !bytes.HasSuffix(norm.Bytes(), []byte("\r\n")) {
		norm.WriteString("\r\n")
	}
	body := norm.Bytes()
	if is7bit(body) {
		if _, err := w.WriteString("Content-Type: " + ctype + "; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"); err != nil {
			return err
		}
		_, err := w.Write(body)
		return err
	}
	if _, err := w.WriteString("Content-Type: " + ctype + "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"); err != nil {
		return err
	}
	return writeQP(w, body)
}

// qpLineMax is the longest encoded line, soft break "=" included (RFC 2045
// §6.7 rule 5).
const qpLineMax = 76

// writeQP writes body, whose line breaks are all CRLF, quoted-printable
// (RFC 2045 §6.7), byte for byte as mime/quotedprintable's Writer does, but
// copying runs of literal characters at once instead of one by one:
//   - rule 2: "!" to "~" except "=" are literal; everything else is =XX;
//   - rule 3: SP and HT are literal except as the last character before a
//     hard line break, where they are encoded;
//   - rule 4: CRLF is a hard line break;
//   - rule 5: a line longer than 76 gets a soft break "=" CRLF.
func writeQP(w *capWriter, body []byte) error {
	var line [qpLineMax + 2]byte
	n := 0 // bytes in line
	flush := func() error {
		_, err := w.Write(line[:n])
		n = 0
		return err
	}
	soft := func() error {
		line[n], line[n+1], line[n+2] = '=', '\r', '\n'
		n += 3
		return flush()
	}
	encode := func(b byte) error {
		if qpLineMax-1-n < 3 {
			if err := soft(); err != nil {
				return err
			}
		}
		const hex = "0123456789ABCDEF"
		line[n], line[n+1], line[n+2] = '=', hex[b>>4], hex[b&0x0f]
		n += 3
		return nil
	}
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case c == '\r' || c == '\n':
			// Rule 3: trailing white space of the line is encoded.
			if n > 0 && (line[n-1] == ' ' || line[n-1] == '\t') {
				n--
				if err := encode(line[n]); err != nil {
					return err
				}
			}
			line[n], line[n+1] = '\r', '\n'
			n += 2
			if err := flush(); err != nil {
				return err
			}
			i++
			if c == '\r' && i < len(body) && body[i] == '\n' {
				i++
			}
		case qpLiteral(c):
			j := literalRunEnd(body, i+1)
			for run := body[i:j]; len(run) > 0; {
				if n == qpLineMax-1 {
					if err := soft(); err != nil {
						return err
					}
				}
				k := copy(line[n:qpLineMax-1], run)
				n += k
				run = run[k:]
			}
			i = j
		default:
			if err := encode(c); err != nil {
				return err
			}
			i++
		}
	}
	if n > 0 && (line[n-1] == ' ' || line[n-1] == '\t') {
		n--
		if err := encode(line[n]); err != nil {
			return err
		}
	}
	return flush()
}

// qpLiteral: the characters written as themselves (RFC 2045 §6.7 rules 2
// and 3).
func qpLiteral(c byte) bool { return qpLiteralTable[c] }

// literalRunEnd returns the index of the first byte at or after i that is
// not qpLiteral (len(b) if none). It tests eight bytes at a time: a word of
// printable ASCII without "=", the bulk of any text, passes three SWAR
// tests (no byte below 0x20, none above 0x7E, none equal to "="); a word
// that fails one (a tab, "=", 8-bit, a line end) is judged byte by byte.
func literalRunEnd(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		below := (x - ones*0x20) & ^x & highs // a byte < 0x20
		above := ((x + ones) | x) & highs     // a byte > 0x7E (false alarms only after one)
		y := x ^ (ones * '=')
		equals := (y - ones) & ^y & highs // a byte == '='
		if below|above|equals != 0 {
			break
		}
		i += 8
	}
	for i < len(b) && qpLiteralTable[b[i]] {
		i++
	}
	return i
}

// qpLiteralTable holds qpLiteral for every byte: one load per character in
// the encoder's inner loop instead of four comparisons.
var qpLiteralTable = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= '!' && c <= '~' && c != '=' || c == ' ' || c == '\t'
	}
	return t
}()

// is7bit: only printable ASCII, SP, HT and CRLF; lines of at most 78
// characters; no "--=_" (our boundary prefix).
func is7bit(b []byte) bool {
	lineLen := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			i++
			lineLen = 0
			continue
		case c == '\t' || (c >= ' ' && c < 0x7f):
		default:
			return false
		}
		lineLen++
		if lineLen > foldAt {
			return false
		}
	}
	return !bytes.Contains(b, []byte("--=_"))
}

// normalizeCRLF appends src to dst with every CRLF, lone CR and lone LF
// written as CRLF. Templates are parsed with LF line ends, so a CR comes
// only from a merge field: without one, lines are found with the
// vectorised bytes.IndexByte.
func normalizeCRLF(dst *bytes.Buffer, src []byte) {
	if bytes.IndexByte(src, '\r') < 0 {
		dst.Grow(len(src) + len(src)/32)
		for len(src) > 0 {
			i := bytes.IndexByte(src, '\n')
			if i < 0 {
				dst.Write(src)
				return
			}
			dst.Write(src[:i])
			dst.WriteString("\r\n")
			src = src[i+1:]
		}
		return
	}
	for len(src) > 0 {
		i := bytes.IndexAny(src, "\r\n")
		if i < 0 {
			dst.Write(src)
			return
		}
		dst.Write(src[:i])
		dst.WriteString("\r\n")
		if src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n' {
			i++
		}
		src = src[i+1:]
	}
}

// normalizeLF returns src with every CRLF, lone CR and lone LF as LF: the
// form template sources are parsed in.
func normalizeLF(src []byte) []byte {
	if bytes.IndexByte(src, '\r') < 0 {
		return src
	}
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\r' {
			if i+1 < len(src) && src[i+1] == '\n' {
				i++
			}
			c = '\n'
		}
		out = append(out, c)
	}
	return out
}
