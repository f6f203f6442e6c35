package route

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, s := range []string{"sandbox", "relay", "direct"} {
		r, err := Parse(s)
		if err != nil || string(r) != s {
			t.Errorf("Parse(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "hybrid", "Relay", "smtp"} {
		if _, err := Parse(s); !errors.Is(err, ErrUnknown) {
			t.Errorf("Parse(%q) error = %v, want ErrUnknown", s, err)
		}
	}
	if Route("").OrDefault() != Sandbox || Direct.OrDefault() != Direct {
		t.Error("OrDefault")
	}
	if Sandbox.Sends() || !Relay.Sends() || !Direct.Sends() {
		t.Error("Sends")
	}
}
