package dkim

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)

// readKey returns a PEM file from testdata (keys made with openssl genpkey
// for these tests only).
func readKey(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newSigner(t testing.TB, keyFile string, opts Options) *Signer {
	t.Helper()
	s, err := New("example.com", "mail2026", readKey(t, keyFile), opts)
	if err != nil {
		t.Fatalf("New(%s): %v", keyFile, err)
	}
	return s
}

// campaignMessage builds a message shaped like internal/render's output:
// the usual campaign header fields and a quoted-printable UTF-8 text body
// of about size bytes, CRLF line endings, lines at most 76 characters.
func campaignMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: Example Shop <news@example.com>\r\n" +
		"To: =?utf-8?q?Ana_Garc=C3=ADa?= <ana@example.org>\r\n" +
		"Subject: =?utf-8?q?Ana=2C_our_spring_sale_=E2=80=93_M=C3=A1laga?=\r\n" +
		"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <20261127100000.4f2a9c1b7e@example.com>\r\n" +
		"List-Unsubscribe: <https://example.com/u/3f9a7c1d2e>, <mailto:unsubscribe@example.com?subject=3f9a7c1d2e>\r\n" +
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n")
	para := []string{
		"Dear Ana Garc=C3=ADa, thank you for shopping with us in M=C3=A1laga. Our spr=",
		"ing collection has arrived and we think you will like it: linen shirts, st=",
		"raw hats and sandals at 20 % off until Sunday.",
		"",
	}
	for i := 0; b.Len() < size; i++ {
		b.WriteString(para[i%len(para)])
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// verify checks msg with go-msgauth as a receiver would, serving the given
// TXT records.
func verify(t testing.TB, msg []byte, records map[string]string) []*msgdkim.Verification {
	t.Helper()
	vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(msg), &msgdkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if v, ok := records[name]; ok {
				return []string{v}, nil
			}
			return nil, fmt.Errorf("no TXT record at %s", name)
		},
	})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return vs
}

// records returns the key records of the signers, as DNS would serve them.
func records(ss ...*Signer) map[string]string {
	m := make(map[string]string)
	for _, s := range ss {
		n, v := s.DNSRecord()
		m[n] = v
	}
	return m
}

// verifyOne checks that msg carries exactly one signature and returns its
// verification.
func verifyOne(t testing.TB, s *Signer, msg []byte) *msgdkim.Verification {
	t.Helper()
	vs := verify(t, msg, records(s))
	if len(vs) != 1 {
		t.Fatalf("got %d signatures, want 1", len(vs))
	}
	return vs[0]
}

// noKeyMaterial fails when msg contains any 12-character run of the
// base64 body of the PEM file.
func noKeyMaterial(t *testing.T, msg string, pemData []byte) {
	t.Helper()
	var body strings.Builder
	for _, l := range strings.Split(string(pemData), "\n") {
		if !strings.HasPrefix(l, "-----") && !strings.Contains(l, ":") {
			body.WriteString(strings.TrimSpace(l))
		}
	}
	s := body.String()
	for i := 0; i+12 <= len(s); i += 4 {
		if strings.Contains(msg, s[i:i+12]) {
			t.Fatalf("error message contains key material %q: %s", s[i:i+12], msg)
		}
	}
}
