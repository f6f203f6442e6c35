package campaign

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"mailout/internal/dkim"
)

// signInPlace leaves buf holding the signature field followed by the
// message, whatever spare capacity buf had.
func TestSignInPlace(t *testing.T) {
	key, err := dkim.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dkim.New("example.com", "s1", key, dkim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\n" + strings.Repeat("body line\r\n", 300)
	for _, spare := range []int{0, 10, 4096} {
		var buf bytes.Buffer
		buf.Grow(len(msg) + spare)
		buf.WriteString(msg)
		got, err := signInPlace(s, &buf)
		if err != nil {
			t.Fatal(err)
		}
		field, err := s.HeaderField([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(got), "DKIM-Signature:") || !strings.HasSuffix(string(got), msg) ||
			len(got) != len(field)+len(msg) || !bytes.Equal(got, buf.Bytes()) {
			t.Errorf("spare %d: signed message is not field + message (%d bytes, field %d, message %d)", spare, len(got), len(field), len(msg))
		}
	}
}

// A missing key file says how to make one; a bad key names the file; a
// From domain that does not align with d= is a warning.
func TestLoadSigner(t *testing.T) {
	key, err := dkim.GenerateKey("rsa", 0)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"/k.pem": key, "/bad.pem": []byte("not a key")}
	read := func(p string) ([]byte, error) {
		if b, ok := files[p]; ok {
			return b, nil
		}
		return nil, fs.ErrNotExist
	}
	d := &DKIMSettings{Domain: "example.com", Selector: "s1", KeyFile: "/missing.pem"}
	if _, _, err := d.LoadSigner(read, "example.com"); !errors.Is(err, ErrDKIM) || !strings.Contains(err.Error(), "mailout dkim keygen") {
		t.Errorf("missing key: %v", err)
	}
	d.KeyFile = "/bad.pem"
	if _, _, err := d.LoadSigner(read, "example.com"); !errors.Is(err, ErrDKIM) || !strings.Contains(err.Error(), "/bad.pem") || strings.Contains(err.Error(), "not a key") {
		t.Errorf("bad key: %v", err)
	}
	d.KeyFile = "/k.pem"
	for _, tc := range []struct {
		from string
		warn bool
	}{{"example.com", false}, {"news.example.com", false}, {"other.org", true}} {
		_, warnings, err := d.LoadSigner(read, tc.from)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(strings.Join(warnings, "\n"), "DMARC"); got != tc.warn {
			t.Errorf("From %s: warnings %q, want a DMARC warning: %v", tc.from, warnings, tc.warn)
		}
	}
}
