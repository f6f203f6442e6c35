package smtpclient

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
)

// Limits on what the reply reader accepts. RFC 5321 §4.5.3.1.5 caps a reply
// line at 512 octets including CRLF; real servers sometimes go a little over,
// so lines up to maxReplyLine are tolerated and longer ones are a protocol
// error. A multi-line reply is capped in lines and bytes so that a hostile
// server cannot make us buffer without end.
const (
	maxReplyLine  = 1000
	maxReplyLines = 100
	maxReplyBytes = 64 << 10
	// readerSize must exceed maxReplyLine so ReadSlice can see a whole line.
	readerSize = 4096
)

// reply is one complete server reply.
type reply struct {
	Code     int
	Enhanced string // RFC 3463 x.y.z or ""
	Lines    []string
}

// Text joins the reply lines, without codes, by "\n".
func (r reply) Text() string { return strings.Join(r.Lines, "\n") }

// protocolError builds the error returned for a malformed reply.
func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// readReply reads one reply (RFC 5321 §4.2): lines of a three-digit code
// followed by "-" (more lines follow), " " or nothing (last line). All lines
// must carry the same code. The returned error wraps ErrProtocol for a
// malformed reply and is the I/O error otherwise.
func readReply(br *bufio.Reader) (reply, error) {
	var r reply
	total := 0
	for {
		line, err := readLine(br)
		if err != nil {
			return reply{}, err
		}
		total += len(line) + 2
		if total > maxReplyBytes || len(r.Lines) >= maxReplyLines {
			return reply{}, protocolError("reply longer than %d lines or %d bytes", maxReplyLines, maxReplyBytes)
		}
		code, last, text, err := parseReplyLine(line)
		if err != nil {
			return reply{}, err
		}
		if r.Lines != nil && code != r.Code {
			return reply{}, protocolError("multi-line reply mixes codes %d and %d", r.Code, code)
		}
		r.Code = code
		r.Lines = append(r.Lines, text)
		if last {
			break
		}
	}
	r.Enhanced, r.Lines = splitEnhanced(r.Code, r.Lines)
	return r, nil
}

// readLine reads one line ending in LF (a preceding CR is removed), refusing
// lines longer than maxReplyLine without buffering them. The text is
// CleanText'ed here, where it enters the program: Latin-1 is accepted and
// control characters never get further.
func readLine(br *bufio.Reader) (string, error) {
	b, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(b) > maxReplyLine+2 {
		return "", protocolError("reply line longer than %d bytes", maxReplyLine)
	}
	if err != nil {
		return "", err
	}
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return CleanText(string(b)), nil
}

// parseReplyLine splits "250-text", "250 text" or "250" into its parts.
// RFC 5321 §4.2: the first digit is 2-5, the second 0-5, the third 0-9.
func parseReplyLine(line string) (code int, last bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", protocolError("reply line %q too short", clip(line))
	}
	d0, d1, d2 := line[0], line[1], line[2]
	if d0 < '2' || d0 > '5' || d1 < '0' || d1 > '5' || d2 < '0' || d2 > '9' {
		return 0, false, "", protocolError("reply line %q has no valid code", clip(line))
	}
	code = int(d0-'0')*100 + int(d1-'0')*10 + int(d2-'0')
	switch {
	case len(line) == 3:
		return code, true, "", nil
	case line[3] == ' ':
		return code, true, line[4:], nil
	case line[3] == '-':
		return code, false, line[4:], nil
	}
	return 0, false, "", protocolError("reply line %q lacks the separator after the code", clip(line))
}

// splitEnhanced takes the RFC 3463 enhanced status code from the start of
// the first line when it is well-formed and its class matches the reply
// code's first digit (RFC 2034 §4 requires that match), and strips the same
// code from every line that starts with it. A code whose class does not
// match is left in the text: it is not an enhanced code for this reply.
func splitEnhanced(code int, lines []string) (string, []string) {
	if len(lines) == 0 {
		return "", lines
	}
	first := lines[0]
	sp := strings.IndexByte(first, ' ')
	cand := first
	if sp >= 0 {
		cand = first[:sp]
	}
	if !validEnhanced(cand) || int(cand[0]-'0') != code/100 {
		return "", lines
	}
	for i, l := range lines {
		if l == cand {
			lines[i] = ""
		} else if strings.HasPrefix(l, cand+" ") {
			lines[i] = l[len(cand)+1:]
		}
	}
	return cand, lines
}

// validEnhanced reports whether s is class.subject.detail per RFC 3463 §2:
// class 2, 4 or 5; subject and detail of one to three digits.
func validEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || (parts[0][0] != '2' && parts[0][0] != '4' && parts[0][0] != '5') {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// clip shortens a string for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
