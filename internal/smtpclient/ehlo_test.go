package smtpclient

import "testing"

// The EHLO name goes out as RFC 5321 wants it: a Unicode name as its
// A-labels (RFC 5890), an IP address as an address literal in brackets
// (RFC 5321 §4.1.3).
func TestEHLONameOnTheWire(t *testing.T) {
	tests := []struct{ local, want string }{
		{"mail.bücher.example", "mail.xn--bcher-kva.example"},
		{"Mail.Example.COM", "mail.example.com"},
		{"127.0.0.1", "[127.0.0.1]"},
		{"::1", "[IPv6:::1]"},
		{"2001:db8::25", "[IPv6:2001:db8::25]"},
		{"[192.0.2.1]", "[192.0.2.1]"},
		{"[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]"},
	}
	for _, tt := range tests {
		t.Run(tt.local, func(t *testing.T) {
			s := startScript(t, nil, `
S: 220 mx.test ESMTP
C: EHLO `+tt.want+`
S: 250 mx.test
C: QUIT
S: 221 Bye`)
			c := mustDial(t, s, func(cfg *Config) { cfg.LocalName = tt.local })
			_ = c.Quit(ctx)
			s.done(t)
		})
	}
}

// A name that cannot be sent as one is refused before any connection: no
// command can be smuggled in with it.
func TestEHLONameRefused(t *testing.T) {
	for _, name := range []string{"mail.example.com\r\nMAIL FROM:<x@y>", "two words", "bad..dots", "[not an address]"} {
		_, err := Dial(ctx, Config{Addr: "127.0.0.1:1", LocalName: name, Timeouts: shortTimeouts()})
		if e := asError(t, err); e.Command != "EHLO" || e.Code != 0 {
			t.Errorf("LocalName %q: got %v, want a local EHLO error", name, err)
		}
	}
}
