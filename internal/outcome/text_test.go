package outcome

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"mailout/internal/route"
	"mailout/internal/smtpclient"
)

// Whatever an error carries, the text and reason of a Result are safe to
// store and print: valid UTF-8 without terminal control characters.
func TestResultTextIsNeutralised(t *testing.T) {
	for _, err := range []error{
		errors.New("read tcp: \x1b]0;title\a\x1b[2J gone \xe9"),
		&smtpclient.Error{Command: "RCPT", Code: 550, Enhanced: "5.1.1", Text: "no \x1b[31msuch\x1b[0m user \x9b"},
		&smtpclient.Error{Command: "MAIL", Text: "sender \x1b[1mbad\x7f"},
	} {
		res := Classify(Attempt{Route: route.Relay, Step: StepMail, Err: err})
		for what, s := range map[string]string{"text": res.Text, "reason": res.Reason} {
			if !utf8.ValidString(s) {
				t.Errorf("%s %q is not valid UTF-8", what, s)
			}
			if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' || r >= 0x7f && r <= 0x9f }) {
				t.Errorf("%s %q holds a control character", what, s)
			}
		}
	}
}
