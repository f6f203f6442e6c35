package render

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// preparedText is a plain text body (plainTemplate) split so that what no
// merge field touches is normalised, checked and encoded once per
// campaign instead of once per message: the whole lines inside each
// literal part. Each such run of lines starts after a hard line break and
// ends with one, and quoted-printable (RFC 2045 §6.7) encodes a line
// without regard to the lines around it, so the message is the same byte
// for byte as encoding the whole body would give; the 7bit test (printable
// ASCII, lines of at most 78, no boundary prefix) is also a per-line test.
//
// A bulk message is mostly such text — a 20 KB newsletter greets its
// reader by name in one line and the rest is the same for everyone — so
// this leaves a copy where there were four passes over the body.
type preparedText []preparedSeg

// preparedSeg is either fixed lines or parts rendered per recipient.
type preparedSeg struct {
	fixed bool
	crlf  []byte // fixed: the lines with CRLF breaks
	qp    []byte // fixed: crlf quoted-printable
	is7   bool   // fixed: crlf can go 7bit
	parts plainTemplate
}

// prepareText splits p, or returns nil when nothing would be saved (no
// literal part holds a whole line) or the template text is not UTF-8.
func prepareText(p plainTemplate) preparedText {
	if p == nil {
		return nil
	}
	var out preparedText
	var dyn plainTemplate
	fixed := 0
	for _, part := range p {
		if part.isField {
			dyn = append(dyn, part)
			continue
		}
		s := part.text
		first, last := strings.IndexByte(s, '\n'), strings.LastIndexByte(s, '\n')
		if first < 0 || first == last {
			dyn = append(dyn, part)
			continue
		}
		lines := s[first+1 : last+1]
		if !utf8.ValidString(lines) {
			return nil
		}
		dyn = append(dyn, plainPart{text: s[:first+1]})
		out = append(out, preparedSeg{parts: dyn})
		dyn = nil
		var crlf bytes.Buffer
		normalizeCRLF(&crlf, []byte(lines))
		var qp bytes.Buffer
		if err := writeQP(&capWriter{buf: &qp, limit: int(^uint(0) >> 1)}, crlf.Bytes()); err != nil {
			return nil
		}
		out = append(out, preparedSeg{fixed: true, crlf: crlf.Bytes(), qp: qp.Bytes(), is7: is7bit(crlf.Bytes())})
		fixed++
		if tail := s[last+1:]; tail != "" {
			dyn = append(dyn, plainPart{text: tail})
		}
	}
	if fixed == 0 {
		return nil
	}
	// The last segment is always rendered per recipient (maybe empty):
	// the body's final line break is added there when it lacks one.
	return append(out, preparedSeg{parts: dyn})
}

// writePreparedText is writeTextPart for a prepared body: the parts of
// each segment rendered per recipient are executed into raw and
// normalised into norm, then the part's headers and every segment are
// written, all 7bit or all quoted-printable.
func (t *Template) writePreparedText(w *capWriter, norm, raw *bytes.Buffer, ctype string, prep preparedText, data map[string]string) error {
	norm.Reset()
	var spanBuf [16][2]int
	spans := spanBuf[:0]
	if len(prep) > len(spanBuf) {
		spans = make([][2]int, 0, len(prep))
	}
	for _, seg := range prep {
		if seg.fixed {
			spans = append(spans, [2]int{})
			continue
		}
		raw.Reset()
		if err := seg.parts.execute(&capWriter{buf: raw, limit: w.room()}, data); err != nil {
			return templateErr(t.textName, err)
		}
		b := raw.Bytes()
		if !utf8.Valid(b) {
			b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
		}
		start := norm.Len()
		normalizeCRLF(norm, b)
		spans = append(spans, [2]int{start, norm.Len()})
	}
	// The body ends with CRLF (writeTextPart): the last segment is
	// rendered per recipient and is the end of norm.
	lastNonEmpty := -1
	for k := len(prep) - 1; k >= 0; k-- {
		if prep[k].fixed || spans[k][1] > spans[k][0] {
			lastNonEmpty = k
			break
		}
	}
	if lastNonEmpty < 0 || !prep[lastNonEmpty].fixed && !bytes.HasSuffix(norm.Bytes()[:spans[lastNonEmpty][1]], []byte("\r\n")) {
		norm.WriteString("\r\n")
		spans[len(spans)-1][1] = norm.Len()
	}
	seven := true
	for k, seg := range prep {
		if seg.fixed && !seg.is7 || !seg.fixed && !is7bit(norm.Bytes()[spans[k][0]:spans[k][1]]) {
			seven = false
			break
		}
	}
	cte := "quoted-printable"
	if seven {
		cte = "7bit"
	}
	if _, err := w.WriteString("Content-Type: " + ctype + "; charset=utf-8\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n"); err != nil {
		return err
	}
	for k, seg := range prep {
		var err error
		switch {
		case seg.fixed && seven:
			_, err = w.Write(seg.crlf)
		case seg.fixed:
			_, err = w.Write(seg.qp)
		case seven:
			_, err = w.Write(norm.Bytes()[spans[k][0]:spans[k][1]])
		default:
			if b := norm.Bytes()[spans[k][0]:spans[k][1]]; len(b) > 0 {
				err = writeQP(w, b)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
