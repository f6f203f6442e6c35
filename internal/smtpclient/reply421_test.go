package smtpclient

import "testing"

// 421 (RFC 5321 §3.8: the service is closing the channel) at RCPT and as
// the reply to the final ".": each is a temporary refusal of that message,
// said by the server, so never a possible duplicate, and the session is
// not used again.
func TestSend421AtRcptAndAfterDot(t *testing.T) {
	for _, tc := range []struct {
		name, script, command string
	}{
		{"at RCPT", greetSerial + `
C: MAIL FROM:<a@x.org>
S: 250 Ok
C: RCPT TO:<b@y.com>
S: 421 4.3.2 System shutting down
X: close`, "RCPT"},
		{"after the final dot", greetSerial + `
C: MAIL FROM:<a@x.org>
S: 250 Ok
C: RCPT TO:<b@y.com>
S: 250 Ok
C: DATA
S: 354 go
X: skipdata
S: 421 4.4.2 Timeout, closing
X: close`, "BODY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startScript(t, nil, tc.script)
			c := mustDial(t, s, nil)
			_, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("hi\r\n"), SendOptions{})
			e := asError(t, err)
			if e.Command != tc.command || e.Code != 421 || !e.Temporary() || e.Ambiguous() {
				t.Errorf("got %+v (ambiguous %v); want a temporary 421 to %s, not ambiguous", e, e.Ambiguous(), tc.command)
			}
			if c.Usable() {
				t.Error("client still usable after 421")
			}
			s.done(t)
		})
	}
}
