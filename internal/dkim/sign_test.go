package dkim

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)

func TestSignVerifies(t *testing.T) {
	longLine := "Content-Transfer-Encoding: 8bit\r\n\r\n" + strings.Repeat("x", 5000) + "\r\n"
	eightBit := "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHola Ana García, ¿qué tal?  Ünïcödé   tabs\tand trailing spaces   \r\n\r\n\r\n"
	folded := "Subject: a subject folded\r\n\tover two lines\r\n"
	msgs := []struct {
		name string
		msg  []byte
	}{
		{"campaign 1KB", campaignMessage(1 << 10)},
		{"campaign 20KB", campaignMessage(20 << 10)},
		{"8-bit UTF-8 body", []byte("From: a@example.com\r\nTo: b@example.org\r\n" + eightBit)},
		{"5000-character line", []byte("From: a@example.com\r\n" + longLine)},
		{"folded subject", []byte("From: a@example.com\r\n" + folded + "\r\nbody\r\n")},
		{"empty body", []byte("From: a@example.com\r\nSubject: nothing\r\n\r\n")},
		{"body without final CRLF", []byte("From: a@example.com\r\n\r\nlast line")},
	}
	keys := []struct {
		file, algo string
		opts       Options
	}{
		{"rsa2048.pem", "rsa", Options{}},
		{"rsa2048-pkcs1.pem", "rsa", Options{}},
		{"rsa1024.pem", "rsa", Options{}},
		{"ed25519.pem", "ed25519", Options{}},
		{"rsa2048.pem", "rsa", Options{HeaderCanon: Simple, BodyCanon: Simple}},
		{"ed25519.pem", "ed25519", Options{HeaderCanon: Simple, BodyCanon: Relaxed}},
	}
	for _, k := range keys {
		s := newSigner(t, k.file, k.opts)
		if s.Algorithm() != k.algo {
			t.Fatalf("%s: Algorithm() = %q, want %q", k.file, s.Algorithm(), k.algo)
		}
		for _, m := range msgs {
			t.Run(k.file+"/"+string(k.opts.HeaderCanon)+"/"+m.name, func(t *testing.T) {
				signed, err := s.Sign(m.msg)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasSuffix(signed, m.msg) || !bytes.HasPrefix(signed, []byte("DKIM-Signature: ")) {
					t.Fatalf("signed message is not a DKIM-Signature field followed by the message:\n%.300s", signed)
				}
				v := verifyOne(t, s, signed)
				if v.Err != nil {
					t.Fatalf("receiver rejects the signature: %v\n%s", v.Err, signed[:len(signed)-len(m.msg)])
				}
				if v.Domain != "example.com" {
					t.Errorf("d= %q, want example.com", v.Domain)
				}
				if time.Since(v.Time) > time.Minute || time.Until(v.Time) > time.Minute {
					t.Errorf("t= %v, want about now", v.Time)
				}
			})
		}
	}
}

// The signature field must be a valid header field: CRLF lines, none over
// the 998-octet limit of RFC 5322 §2.1.1, continuation lines folded.
func TestSignatureFieldShape(t *testing.T) {
	for _, f := range []string{"rsa2048.pem", "ed25519.pem"} {
		t.Run(f, func(t *testing.T) {
			s := newSigner(t, f, Options{Expiration: 72 * time.Hour, Identity: "@news.example.com"})
			h, err := s.HeaderField(campaignMessage(1 << 10))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(h, "DKIM-Signature:") || !strings.HasSuffix(h, "\r\n") {
				t.Fatalf("not a header field: %q", h)
			}
			lines := strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n")
			for i, l := range lines {
				if len(l) > 998 {
					t.Errorf("line %d is %d octets", i, len(l))
				}
				if strings.ContainsAny(l, "\r\n") {
					t.Errorf("line %d has a bare CR or LF: %q", i, l)
				}
				if i > 0 && l[0] != ' ' && l[0] != '\t' {
					t.Errorf("line %d is not a continuation: %q", i, l)
				}
			}
			for _, tag := range []string{"v=1;", "a=" + s.Algorithm() + "-sha256;", "c=relaxed/relaxed;", "d=example.com;", "s=mail2026;", "i=@news.example.com;", " x="} {
				if !strings.Contains(h, tag) {
					t.Errorf("signature lacks %q:\n%s", tag, h)
				}
			}
		})
	}
}

func TestSignedHeaderList(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		msg  string
		want []string
	}{
		{
			name: "campaign message",
			msg:  string(campaignMessage(300)),
			want: []string{"From", "From", "Reply-To", "Subject", "Subject", "Date", "Date", "To", "To", "Cc", "Message-ID", "Message-ID",
				"MIME-Version", "MIME-Version", "Content-Type", "Content-Type", "Content-Transfer-Encoding", "Content-Transfer-Encoding",
				"List-Unsubscribe", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Unsubscribe-Post"},
		},
		{
			name: "absent oversigned fields are signed as absent, others skipped",
			msg:  "From: a@example.com\r\nTo: b@example.org\r\nX-Mailer: mailout\r\n\r\nhi\r\n",
			want: []string{"From", "From", "Reply-To", "Subject", "Date", "To", "To", "Cc", "Message-ID",
				"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe", "List-Unsubscribe-Post"},
		},
		{
			name: "two To fields and a folded one, names case-insensitive",
			msg:  "from: a@example.com\r\nTO: b@example.org\r\nTo: c@example.org,\r\n d@example.org\r\n\r\n",
			want: []string{"From", "From", "Reply-To", "Subject", "Date", "To", "To", "To", "Cc", "Message-ID",
				"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe", "List-Unsubscribe-Post"},
		},
		{
			name: "custom list gains From and the unsubscribe fields",
			opts: Options{Headers: []string{"Subject", "X-Campaign"}, Oversign: []string{}},
			msg:  "From: a@example.com\r\nSubject: s\r\nX-Campaign: 7\r\n\r\n",
			want: []string{"Subject", "X-Campaign", "From"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSigner(t, "ed25519.pem", c.opts)
			signed, err := s.Sign([]byte(c.msg))
			if err != nil {
				t.Fatal(err)
			}
			v := verifyOne(t, s, signed)
			if v.Err != nil {
				t.Fatal(v.Err)
			}
			if !slices.Equal(v.HeaderKeys, c.want) {
				t.Errorf("h= %v\nwant %v", v.HeaderKeys, c.want)
			}
		})
	}
}

// What a receiver sees after the message was changed in transit.
func TestChangesAfterSigning(t *testing.T) {
	msg := campaignMessage(2 << 10)
	cases := []struct {
		name     string
		change   func(signed []byte) []byte
		verifies bool
	}{
		{"unchanged", func(b []byte) []byte { return b }, true},
		{"relay adds Received on top", func(b []byte) []byte {
			return append([]byte("Received: from relay.example.net by mx.example.org; Fri, 27 Nov 2026 10:00:01 +0000\r\n"), b...)
		}, true},
		{"relay re-folds Subject whitespace", func(b []byte) []byte {
			return bytes.Replace(b, []byte("Subject: =?utf-8"), []byte("Subject:   =?utf-8"), 1)
		}, true},
		{"body byte changed", func(b []byte) []byte {
			return bytes.Replace(b, []byte("20 % off"), []byte("90 % off"), 1)
		}, false},
		{"footer appended to body", func(b []byte) []byte {
			return append(b, "-- \r\nSent via relay\r\n"...)
		}, false},
		{"second From added", func(b []byte) []byte {
			return append([]byte("From: Bank <security@bank.example>\r\n"), b...)
		}, false},
		{"second From added below the first", func(b []byte) []byte {
			return bytes.Replace(b, []byte("MIME-Version:"), []byte("From: Bank <security@bank.example>\r\nMIME-Version:"), 1)
		}, false},
		{"second Subject added", func(b []byte) []byte {
			return append([]byte("Subject: Urgent: verify your account\r\n"), b...)
		}, false},
		{"Subject changed", func(b []byte) []byte {
			return bytes.Replace(b, []byte("spring_sale"), []byte("winter_sale"), 1)
		}, false},
		{"List-Unsubscribe replaced", func(b []byte) []byte {
			return bytes.Replace(b, []byte("https://example.com/u/"), []byte("https://evil.example/u/"), 1)
		}, false},
		// Fields the message lacks are signed as absent (RFC 6376 §5.4):
		// a reply address or a copy recipient added later breaks it.
		{"Reply-To added", func(b []byte) []byte {
			return append([]byte("Reply-To: Support <help@evil.example>\r\n"), b...)
		}, false},
		{"Cc added", func(b []byte) []byte {
			return bytes.Replace(b, []byte("MIME-Version:"), []byte("Cc: other@example.net\r\nMIME-Version:"), 1)
		}, false},
		// Fields present once are signed once more than they occur
		// (RFC 6376 §8.15): a second copy above or below breaks it.
		{"second To added", func(b []byte) []byte {
			return append([]byte("To: other@example.net\r\n"), b...)
		}, false},
		{"second To added below the first", func(b []byte) []byte {
			return bytes.Replace(b, []byte("MIME-Version:"), []byte("To: other@example.net\r\nMIME-Version:"), 1)
		}, false},
		{"second Date added", func(b []byte) []byte {
			return append([]byte("Date: Sat, 1 Jan 2000 00:00:00 +0000\r\n"), b...)
		}, false},
		{"second Message-ID added", func(b []byte) []byte {
			return append([]byte("Message-ID: <forged@evil.example>\r\n"), b...)
		}, false},
		{"second Content-Type added", func(b []byte) []byte {
			return append([]byte("Content-Type: text/html; charset=utf-8\r\n"), b...)
		}, false},
		{"second Content-Transfer-Encoding added", func(b []byte) []byte {
			return append([]byte("Content-Transfer-Encoding: base64\r\n"), b...)
		}, false},
		{"second MIME-Version added", func(b []byte) []byte {
			return append([]byte("MIME-Version: 1.0\r\n"), b...)
		}, false},
		{"second List-Unsubscribe-Post added", func(b []byte) []byte {
			return append([]byte("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"), b...)
		}, false},
	}
	for _, f := range []string{"rsa2048.pem", "ed25519.pem"} {
		s := newSigner(t, f, Options{})
		signed, err := s.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			t.Run(f+"/"+c.name, func(t *testing.T) {
				got := c.change(bytes.Clone(signed))
				if c.name != "unchanged" && bytes.Equal(got, signed) {
					t.Fatal("the change did not apply; fix the test")
				}
				v := verifyOne(t, s, got)
				if (v.Err == nil) != c.verifies {
					t.Errorf("verification error = %v, want verifies=%v", v.Err, c.verifies)
				}
			})
		}
	}
}

func TestHeaderOnlyLayout(t *testing.T) {
	s := newSigner(t, "ed25519.pem", Options{})
	msg := campaignMessage(1 << 10)
	prefix := []byte("already in the buffer\r\n")
	out, err := s.AppendSigned(bytes.Clone(prefix), msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, prefix) {
		t.Fatal("AppendSigned overwrote dst")
	}
	signed := out[len(prefix):]
	h, err := s.HeaderField(msg)
	if err != nil {
		t.Fatal(err)
	}
	// Ed25519 is deterministic, so Header+msg matches unless the second
	// ticked between the two calls (t=); verify both instead of comparing.
	for _, m := range [][]byte{signed, append([]byte(h), msg...)} {
		if v := verifyOne(t, s, m); v.Err != nil {
			t.Fatal(v.Err)
		}
	}
}

func TestSignRejects(t *testing.T) {
	s := newSigner(t, "ed25519.pem", Options{})
	for _, msg := range []string{"", "From: a@example.com\r\nSubject: no blank line\r\n", "just text"} {
		dst := []byte("keep")
		out, err := s.AppendSigned(dst, []byte(msg))
		if err == nil {
			t.Errorf("%q: signed a message without a header section end", msg)
		}
		if string(out) != "keep" {
			t.Errorf("%q: dst changed on error: %q", msg, out)
		}
	}
}

func TestExpiration(t *testing.T) {
	msg := campaignMessage(500)
	now := time.Now().Truncate(time.Second)
	cases := []struct {
		name     string
		opts     Options
		wantX    time.Time
		verifies bool
	}{
		{"no expiration", Options{}, time.Time{}, true},
		{"72 hours", Options{Expiration: 72 * time.Hour, Now: func() time.Time { return now }}, now.Add(72 * time.Hour), true},
		{"signed two days ago for one hour", Options{Expiration: time.Hour, Now: func() time.Time { return now.Add(-48 * time.Hour) }}, now.Add(-47 * time.Hour), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSigner(t, "ed25519.pem", c.opts)
			signed, err := s.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			v := verifyOne(t, s, signed)
			if !v.Expiration.Equal(c.wantX) {
				t.Errorf("x= %v, want %v", v.Expiration, c.wantX)
			}
			if (v.Err == nil) != c.verifies {
				t.Errorf("verification error = %v, want verifies=%v", v.Err, c.verifies)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	for _, id := range []string{"@example.com", "news@example.com", "@news.example.com", "bounce+x@mail.example.com"} {
		s := newSigner(t, "ed25519.pem", Options{Identity: id})
		signed, err := s.Sign(campaignMessage(300))
		if err != nil {
			t.Fatal(err)
		}
		v := verifyOne(t, s, signed)
		if v.Err != nil || v.Identifier != id {
			t.Errorf("i=%s: identifier %q, err %v", id, v.Identifier, v.Err)
		}
	}
}

// Many scheduler workers sign with one Signer; run with -race.
func TestConcurrentSign(t *testing.T) {
	for _, f := range []string{"rsa2048.pem", "ed25519.pem"} {
		s := newSigner(t, f, Options{Expiration: time.Hour})
		recs := records(s)
		var wg sync.WaitGroup
		errs := make(chan string, 64)
		for w := range 8 {
			wg.Go(func() {
				var buf []byte
				for i := range 10 {
					msg := campaignMessage(1<<10 + 100*w + i)
					var err error
					buf, err = s.AppendSigned(buf[:0], msg)
					if err != nil {
						errs <- err.Error()
						return
					}
					vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(buf), &msgdkim.VerifyOptions{
						LookupTXT: func(name string) ([]string, error) { return []string{recs[name]}, nil },
					})
					if err != nil || len(vs) != 1 || vs[0].Err != nil {
						errs <- "worker message does not verify"
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("%s: %s", f, e)
		}
	}
}
