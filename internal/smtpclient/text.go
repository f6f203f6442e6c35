package smtpclient

import (
	"strings"
	"unicode/utf8"
)

// CleanText makes text that came from a server (or from an error about a
// session) safe to store and to print: it is data, never terminal control.
//
//   - Bytes that are not UTF-8 are read as Latin-1 (ISO 8859-1), which is
//     what old servers still send in banners and refusals: "caf\xe9"
//     becomes "café". Nothing is dropped and nothing is a protocol error;
//     RFC 5321 §4.2 asks only for a code, the text is for humans.
//   - Control characters are replaced by U+FFFD: C0 except tab and line
//     feed (line feed joins the lines of a multi-line reply), DEL, C1
//     (U+0080-U+009F, which includes Latin-1 bytes 0x80-0x9F), and the
//     bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069)
//     that reorder what a terminal shows.
//
// The result is valid UTF-8. CleanText is idempotent.
func CleanText(s string) string {
	if printable(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			r, n = rune(s[i]), 1 // Latin-1: the byte is the code point
		}
		i += n
		if controlRune(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	return b.String()
}

// printable reports the common case: only printable ASCII, tab and LF.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x7f || c < 0x20 && c != '\t' && c != '\n' {
			return false
		}
	}
	return true
}

// controlRune reports the characters CleanText replaces.
func controlRune(r rune) bool {
	switch {
	case r == '\t' || r == '\n':
		return false
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
