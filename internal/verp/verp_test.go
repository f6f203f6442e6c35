package verp

import (
	"errors"
	"strings"
	"testing"
)

func signer(t *testing.T, b byte) *Signer {
	t.Helper()
	s, err := NewSigner([]byte(strings.Repeat(string(b), KeySize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAddressRoundTrip(t *testing.T) {
	s := signer(t, 'k')
	ref := Ref{CampaignID: 12, DeliveryID: 345678, Attempt: 2}
	a := s.Address("bounces@example.com", ref)
	local, domain, _ := strings.Cut(a, "@")
	if domain != "example.com" || !strings.HasPrefix(local, "bounces+") {
		t.Fatalf("address %q", a)
	}
	tok := strings.TrimPrefix(local, "bounces+")
	if len(tok) > 32 {
		t.Errorf("token %q is %d characters, want at most 32", tok, len(tok))
	}
	for _, r := range tok {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
			t.Fatalf("token %q has %q: not local-part and URL safe", tok, r)
		}
	}
	got, err := s.Parse(a)
	if err != nil || got != ref {
		t.Fatalf("Parse(%q) = %+v, %v; want %+v", a, got, err, ref)
	}
	// A server that upper-cases the local part does not break it.
	if got, err := s.Parse(strings.ToUpper(a)); err != nil || got != ref {
		t.Fatalf("Parse(upper) = %+v, %v", got, err)
	}
}

func TestForgedTokenRefused(t *testing.T) {
	s := signer(t, 'k')
	tok := s.Token(Ref{CampaignID: 1, DeliveryID: 2, Attempt: 1})
	// Another key.
	if _, err := signer(t, 'x').Verify(tok); !errors.Is(err, ErrBadToken) {
		t.Errorf("other key: %v, want ErrBadToken", err)
	}
	// One character altered.
	b := []byte(tok)
	if b[0] == 'a' {
		b[0] = 'b'
	} else {
		b[0] = 'a'
	}
	if _, err := s.Verify(string(b)); !errors.Is(err, ErrBadToken) {
		t.Errorf("altered: %v, want ErrBadToken", err)
	}
	for _, bad := range []string{"", "!!", "abc", tok[:len(tok)-1]} {
		if _, err := s.Verify(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("Verify(%q) = %v, want ErrBadToken", bad, err)
		}
	}
	if _, err := s.Parse("bounces@example.com"); !errors.Is(err, ErrNoToken) {
		t.Errorf("no token: %v", err)
	}
}
