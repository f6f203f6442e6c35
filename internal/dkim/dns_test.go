package dkim

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
)

func TestDNSRecord(t *testing.T) {
	cases := []struct {
		file, wantPrefix string
		wantKeyLen       int // decoded p= length
	}{
		{"rsa2048.pem", "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", 294},
		{"rsa1024.pem", "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ", 162},
		{"ed25519.pem", "v=DKIM1; k=ed25519; p=", 32},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			s := newSigner(t, c.file, Options{})
			name, value := s.DNSRecord()
			if name != "mail2026._domainkey.example.com" {
				t.Errorf("name %q", name)
			}
			if !strings.HasPrefix(value, c.wantPrefix) {
				t.Errorf("value %q, want prefix %q", value, c.wantPrefix)
			}
			p, err := base64.StdEncoding.DecodeString(value[strings.Index(value, "p=")+2:])
			if err != nil || len(p) != c.wantKeyLen {
				t.Errorf("p= decodes to %d bytes (%v), want %d", len(p), err, c.wantKeyLen)
			}
			parts := SplitTXT(value)
			if strings.Join(parts, "") != value {
				t.Error("SplitTXT parts do not join back to the value")
			}
			for _, p := range parts {
				if len(p) > 255 || p == "" {
					t.Errorf("character-string of %d octets", len(p))
				}
			}
			zone := s.ZoneRecord()
			if !strings.HasPrefix(zone, name+". IN TXT ( \"") || strings.Count(zone, `"`) != 2*len(parts) {
				t.Errorf("zone line %q", zone)
			}
		})
	}
}

func TestSplitTXT(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 510, 511, 1000} {
		v := strings.Repeat("a", n)
		parts := SplitTXT(v)
		want := max(1, (n+254)/255)
		if len(parts) != want || strings.Join(parts, "") != v {
			t.Errorf("%d octets: %d parts, want %d", n, len(parts), want)
		}
	}
}

// lookup serves TXT answers for the test's record name.
func lookup(answers []string, err error) func(context.Context, string) ([]string, error) {
	return func(ctx context.Context, name string) ([]string, error) {
		if err != nil {
			return nil, err
		}
		if name != "mail2026._domainkey.example.com" {
			return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
		}
		return answers, nil
	}
}

func TestCheckPublished(t *testing.T) {
	rsaS := newSigner(t, "rsa2048.pem", Options{})
	edS := newSigner(t, "ed25519.pem", Options{})
	_, rsaRec := rsaS.DNSRecord()
	_, edRec := edS.DNSRecord()
	_, otherRec := newSigner(t, "other-rsa2048.pem", Options{}).DNSRecord()
	pkcs1 := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(rsaS.key.signer.Public().(*rsa.PublicKey)))
	rsaP := rsaRec[strings.Index(rsaRec, "p=")+2:]

	cases := []struct {
		name    string
		s       *Signer
		answers []string
		lookErr error
		want    error // nil: no problem
		warning bool
	}{
		{"rsa published", rsaS, []string{rsaRec}, nil, nil, false},
		{"ed25519 published", edS, []string{edRec}, nil, nil, false},
		{"rsa as bare PKCS#1, no v= no k=", rsaS, []string{"p=" + pkcs1[strings.Index(pkcs1, "p=")+2:]}, nil, nil, false},
		{"p= with spaces, extra tags, trailing semicolon", rsaS, []string{"v=DKIM1; h=sha256; s=email; n=mailout; k=rsa; p=" + rsaP[:100] + " " + rsaP[100:] + ";"}, nil, nil, false},
		{"t=s strict is fine", edS, []string{edRec + "; t=s"}, nil, nil, false},
		{"not found", rsaS, nil, &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}, ErrNotPublished, false},
		{"no TXT records", rsaS, []string{}, nil, ErrNotPublished, false},
		{"servfail", rsaS, nil, &net.DNSError{Err: "server misbehaving", Name: "x", IsTemporary: true}, ErrLookup, false},
		{"two records", rsaS, []string{rsaRec, "v=spf1 -all"}, nil, ErrMultipleRecords, false},
		{"no p=", rsaS, []string{"v=DKIM1; k=rsa"}, nil, ErrRecordSyntax, false},
		{"not a tag list", rsaS, []string{"hello world"}, nil, ErrRecordSyntax, false},
		{"duplicate tag", rsaS, []string{rsaRec + "; p=AAAA"}, nil, ErrRecordSyntax, false},
		{"wrong version", rsaS, []string{"v=DKIM2; k=rsa; p=" + rsaP}, nil, ErrRecordSyntax, false},
		{"p= not base64", rsaS, []string{"v=DKIM1; k=rsa; p=!!!"}, nil, ErrRecordSyntax, false},
		{"h=sha1 only", rsaS, []string{"v=DKIM1; h=sha1; k=rsa; p=" + rsaP}, nil, ErrRecordSyntax, false},
		{"s= not email", rsaS, []string{"v=DKIM1; s=tlsrpt; k=rsa; p=" + rsaP}, nil, ErrRecordSyntax, false},
		{"revoked", rsaS, []string{"v=DKIM1; k=rsa; p="}, nil, ErrKeyRevoked, false},
		{"k=ed25519 for an rsa key", rsaS, []string{"v=DKIM1; k=ed25519; p=" + rsaP}, nil, ErrKeyType, false},
		{"no k= (rsa) for an ed25519 key", edS, []string{strings.Replace(edRec, "k=ed25519; ", "", 1)}, nil, ErrKeyType, false},
		{"another rsa key", rsaS, []string{otherRec}, nil, ErrKeyMismatch, false},
		{"ed25519 key garbled", edS, []string{strings.Replace(edRec, "p=", "p=AAAA", 1)}, nil, ErrKeyMismatch, false},
		{"testing mode", rsaS, []string{rsaRec + "; t=y"}, nil, ErrTestingMode, true},
		{"testing and strict", edS, []string{edRec + "; t=y:s"}, nil, ErrTestingMode, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckPublished(t.Context(), c.s, lookup(c.answers, c.lookErr))
			if c.want == nil {
				if err != nil {
					t.Fatalf("unexpected problem: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want errors.Is %v", err, c.want)
			}
			if IsWarning(err) != c.warning {
				t.Errorf("IsWarning = %v, want %v", !c.warning, c.warning)
			}
			var pe *PublishError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, want *PublishError", err)
			}
			// The operator reads what to publish, exactly.
			name, value := c.s.DNSRecord()
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), `"`+value+`"`) {
				t.Errorf("message does not give the record to publish:\n%v", err)
			}
			if c.lookErr != nil && !errors.Is(err, c.lookErr) {
				t.Errorf("resolver error not wrapped: %v", err)
			}
		})
	}
}

// CheckPublished and the verifier agree: what CheckPublished accepts,
// go-msgauth verifies.
func TestCheckPublishedAgreesWithVerifier(t *testing.T) {
	s := newSigner(t, "rsa2048.pem", Options{})
	name, good := s.DNSRecord()
	signed, err := s.Sign(campaignMessage(500))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []string{good, "v=DKIM1; k=rsa; p=", strings.Replace(good, "k=rsa", "k=ed25519", 1)} {
		checkErr := CheckPublished(t.Context(), s, lookup([]string{rec}, nil))
		v := verify(t, signed, map[string]string{name: rec})[0]
		if (checkErr == nil) != (v.Err == nil) {
			t.Errorf("record %.40q: CheckPublished %v, verifier %v", rec, checkErr, v.Err)
		}
	}
}

// FuzzCheckPublished feeds arbitrary TXT answers to the key-record parser:
// it must never panic, and must accept only the signer's own key.
func FuzzCheckPublished(f *testing.F) {
	s := newSigner(f, "ed25519.pem", Options{})
	_, rec := s.DNSRecord()
	for _, seed := range []string{rec, rec + "; t=y", "v=DKIM1; p=", "p", ";;", "=;=", "v=DKIM1; k=rsa; p=MIGfMA0G", "k=ed25519;p=" + strings.Repeat("A", 43) + "="} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		err := CheckPublished(context.Background(), s, lookup([]string{txt}, nil))
		if err == nil || IsWarning(err) {
			tags, perr := parseKeyRecord(txt)
			if perr != nil || !strings.EqualFold(tags["k"], "ed25519") {
				t.Fatalf("accepted %q", txt)
			}
		}
	})
}
