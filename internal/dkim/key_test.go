package dkim

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewKeyErrors(t *testing.T) {
	rsa := readKey(t, "rsa2048.pem")
	block, _ := pem.Decode(rsa)
	truncated := pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes[:len(block.Bytes)/2]})
	cases := []struct {
		name    string
		pem     []byte
		want    error
		mention string // a word the operator needs to see
	}{
		{"empty", nil, ErrKeyFormat, "no PEM block"},
		{"garbage", []byte("this is not a key\x00\xff"), ErrKeyFormat, "no PEM block"},
		{"base64 without PEM armour", bytes.Join(bytes.Split(rsa, []byte("\n"))[1:10], nil), ErrKeyFormat, "no PEM block"},
		{"certificate instead of key", []byte("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUDtAA\n-----END CERTIFICATE-----\n"), ErrKeyFormat, `"CERTIFICATE"`},
		{"public key instead of private", []byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"), ErrKeyFormat, `"PUBLIC KEY"`},
		{"PKCS#8 body under PKCS#1 label", bytes.Replace(bytes.Replace(rsa, []byte("BEGIN PRIVATE"), []byte("BEGIN RSA PRIVATE"), 1), []byte("END PRIVATE"), []byte("END RSA PRIVATE"), 1), ErrKeyFormat, "PKCS#1"},
		{"truncated DER", truncated, ErrKeyFormat, "PKCS#8"},
		{"ECDSA key", readKey(t, "ec.pem"), ErrKeyFormat, "ECDSA"},
		{"512-bit RSA", readKey(t, "rsa512-pkcs1.pem"), ErrWeakKey, "512 bits"},
		{"encrypted PKCS#8", readKey(t, "encrypted-pkcs8.pem"), ErrKeyEncrypted, "encrypted"},
		{"encrypted legacy PEM", readKey(t, "encrypted-legacy.pem"), ErrKeyEncrypted, "encrypted"},
		{"damaged PEM", []byte(strings.Replace(string(rsa), "\n-----END", "!\n-----END", 1)), ErrKeyFormat, "damaged"},
		{"OpenSSH key", []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW==\n-----END OPENSSH PRIVATE KEY-----\n"), ErrKeyFormat, "OpenSSH"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New("example.com", "sel", c.pem, Options{})
			if err == nil {
				t.Fatalf("New accepted the key (%s)", s.Algorithm())
			}
			if !errors.Is(err, c.want) {
				t.Errorf("error %v, want errors.Is %v", err, c.want)
			}
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Errorf("error is %T, want *KeyError", err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("error %q does not mention %q", err, c.mention)
			}
			noKeyMaterial(t, err.Error(), c.pem)
		})
	}
}

func TestKeyFilesWithOtherBlocks(t *testing.T) {
	// A key file that also holds parameters or a certificate: the first
	// private key is used.
	pem := append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"), readKey(t, "ed25519.pem")...)
	s, err := New("example.com", "sel", pem, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Algorithm() != "ed25519" {
		t.Errorf("algorithm %s", s.Algorithm())
	}
}

func TestWarnings(t *testing.T) {
	cases := []struct {
		file string
		want []string // substrings, one per warning
	}{
		{"rsa2048.pem", nil},
		{"rsa2048-pkcs1.pem", nil},
		{"rsa1024.pem", []string{"1024 bits", "RFC 8301"}},
		{"ed25519.pem", []string{"Ed25519", "RSA"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			w := newSigner(t, c.file, Options{}).Warnings()
			if c.want == nil {
				if len(w) != 0 {
					t.Errorf("warnings %q, want none", w)
				}
				return
			}
			if len(w) != 1 {
				t.Fatalf("warnings %q, want one", w)
			}
			for _, sub := range c.want {
				if !strings.Contains(w[0], sub) {
					t.Errorf("warning %q does not mention %q", w[0], sub)
				}
			}
		})
	}
}

func TestNewRejectsNames(t *testing.T) {
	key := readKey(t, "ed25519.pem")
	cases := []struct {
		name, domain, selector string
		opts                   Options
	}{
		{"empty domain", "", "sel", Options{}},
		{"domain with space", "exa mple.com", "sel", Options{}},
		{"single-label domain", "localhost", "sel", Options{}},
		{"domain is an IP", "192.0.2.1", "sel", Options{}},
		{"empty selector", "example.com", "", Options{}},
		{"selector with underscore", "example.com", "mail_2026", Options{}},
		{"selector with semicolon", "example.com", "sel;x=1", Options{}},
		{"selector label starts with hyphen", "example.com", "-sel", Options{}},
		{"selector empty label", "example.com", "a..b", Options{}},
		{"selector too long", "example.com", strings.Repeat("a", 64), Options{}},
		{"unknown canonicalisation", "example.com", "sel", Options{BodyCanon: "nowsp"}},
		{"negative expiration", "example.com", "sel", Options{Expiration: -1}},
		{"sub-second expiration", "example.com", "sel", Options{Expiration: time.Millisecond}},
		{"identity outside domain", "example.com", "sel", Options{Identity: "@example.org"}},
		{"identity suffix trick", "example.com", "sel", Options{Identity: "@badexample.com"}},
		{"identity without @", "example.com", "sel", Options{Identity: "example.com"}},
		{"header name with colon", "example.com", "sel", Options{Headers: []string{"From:"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.domain, c.selector, key, c.opts); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestNewAcceptsNames(t *testing.T) {
	key := readKey(t, "ed25519.pem")
	cases := []struct{ domain, selector, wantName string }{
		{"Example.COM", "Mail2026", "mail2026._domainkey.example.com"},
		{"bücher.example", "s1", "s1._domainkey.xn--bcher-kva.example"},
		{"example.com", "eu.2026-11", "eu.2026-11._domainkey.example.com"},
	}
	for _, c := range cases {
		s, err := New(c.domain, c.selector, key, Options{})
		if err != nil {
			t.Errorf("%s %s: %v", c.domain, c.selector, err)
			continue
		}
		if name, _ := s.DNSRecord(); name != c.wantName {
			t.Errorf("record name %q, want %q", name, c.wantName)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	cases := []struct {
		algo     string
		bits     int
		wantAlgo string
	}{
		{"rsa", 0, "rsa"},
		{"ed25519", 0, "ed25519"},
		{"Ed25519", 256, "ed25519"},
	}
	for _, c := range cases {
		t.Run(c.algo, func(t *testing.T) {
			t.Parallel()
			pem, err := GenerateKey(c.algo, c.bits)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(pem, []byte("-----BEGIN PRIVATE KEY-----\n")) {
				t.Fatalf("not PKCS#8 PEM: %.40q", pem)
			}
			s, err := New("example.com", "gen", pem, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if s.Algorithm() != c.wantAlgo || s.key.algo == "rsa" && s.key.bits != 2048 {
				t.Fatalf("generated %s %d bits", s.Algorithm(), s.key.bits)
			}
			signed, err := s.Sign(campaignMessage(500))
			if err != nil {
				t.Fatal(err)
			}
			if v := verifyOne(t, s, signed); v.Err != nil {
				t.Fatal(v.Err)
			}
		})
	}
	for _, bad := range []struct {
		algo string
		bits int
	}{{"rsa", 1024}, {"rsa", 8192}, {"ecdsa", 0}, {"ed25519", 2048}} {
		if _, err := GenerateKey(bad.algo, bad.bits); err == nil {
			t.Errorf("GenerateKey(%q, %d) succeeded", bad.algo, bad.bits)
		}
	}
}

// FuzzNew feeds arbitrary bytes to the key parser: New must return a
// signer or an error, never panic, and an accepted key must sign.
func FuzzNew(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.pem"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte{})
	msg := []byte("From: a@example.com\r\n\r\nhi\r\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := New("example.com", "sel", data, Options{})
		if err != nil {
			if s != nil {
				t.Fatal("signer and error")
			}
			return
		}
		if _, err := s.Sign(msg); err != nil {
			t.Fatalf("accepted key cannot sign: %v", err)
		}
	})
}
