package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"mailout/internal/peertest"
)

// TestPostfixRelayInterop sends a 200-recipient campaign through a real
// Postfix (STARTTLS, SASL AUTH) and checks every message where Postfix
// delivered it: personalised headers and body, attachment byte for byte.
func TestPostfixRelayInterop(t *testing.T) {
	p := peertest.Postfix(t)
	p.Clean(t)
	const n = 200
	var emails []string
	for i := range n {
		emails = append(emails, fmt.Sprintf("user%03d@example.%s", i, []string{"org", "net", "com"}[i%3]))
	}
	list := writeList(t, emails...)
	msgFile := writeMessage(t, "From: Tienda <news@example.com>\nSubject: Hola {{.first_name}} ñandú\nX-Campaign: interop\n\nQuerido {{.first_name}},\n.línea con punto\n{{.email}}\n")
	attach := filepath.Join(t.TempDir(), "price list.pdf")
	blob := make([]byte, 30000)
	_, _ = rand.Read(blob)
	if err := os.WriteFile(attach, blob, 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "mailout.db")
	env := map[string]string{"PEER_PASS": p.Pass}
	r := mailout(t, env, "send", "--db", db, "--campaign", "interop", "--recipients", list, "--message", msgFile,
		"--attach", attach, "--relay", fmt.Sprintf("smtp://%s@%s?password-env=PEER_PASS", p.User, p.Submission),
		"--relay-ca", p.CAFile, "--helo", "sender.mailout.test", "--connections", "4", "--rate", "0")
	if r.code != exitOK {
		t.Fatalf("send exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := p.WaitDelivered(ctx, t, n); err != nil {
		t.Fatal(err)
	}
	for i, e := range emails {
		got := p.Delivered(t, e)
		if len(got) != 1 {
			t.Errorf("%s: %d messages at Postfix, want 1", e, len(got))
			continue
		}
		checkInterop(t, got[0], e, fmt.Sprintf("Name%d", i), blob)
	}
}

func checkInterop(t *testing.T, raw []byte, email, name string, blob []byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", email, err)
	}
	var dec mime.WordDecoder
	subj, _ := dec.DecodeHeader(m.Header.Get("Subject"))
	if subj != "Hola "+name+" ñandú" {
		t.Errorf("%s: Subject %q", email, subj)
	}
	if m.Header.Get("X-Campaign") != "interop" || m.Header.Get("Message-Id") == "" {
		t.Errorf("%s: custom header or Message-ID missing", email)
	}
	if to, _ := mail.ParseAddress(m.Header.Get("To")); to == nil || to.Address != email {
		t.Errorf("%s: To %q", email, m.Header.Get("To"))
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("%s: content type: %v", email, err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var text string
	var att []byte
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", email, err)
		}
		body, _ := io.ReadAll(part)
		switch cte := strings.ToLower(part.Header.Get("Content-Transfer-Encoding")); {
		case strings.HasPrefix(part.Header.Get("Content-Type"), "text/plain"):
			text = decodeCTE(t, cte, body)
		case strings.Contains(part.Header.Get("Content-Disposition"), "attachment"):
			att, err = base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(body)))
			if err != nil {
				t.Fatalf("%s: attachment base64: %v", email, err)
			}
		}
	}
	want := "Querido " + name + ",\n.línea con punto\n" + email + "\n"
	if strings.ReplaceAll(text, "\r\n", "\n") != want {
		t.Errorf("%s: body %q, want %q", email, text, want)
	}
	if !bytes.Equal(att, blob) {
		t.Errorf("%s: attachment differs (%d bytes, want %d)", email, len(att), len(blob))
	}
}

func decodeCTE(t *testing.T, cte string, body []byte) string {
	t.Helper()
	switch cte {
	case "quoted-printable":
		b, err := io.ReadAll(quotedPrintableReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	case "base64":
		b, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return string(body)
}

// TestPostfixBouncesFetched sends a campaign with a VERP return path
// through the real Postfix, which cannot deliver three of its recipients
// (the next hop refuses an unknown user; a null-MX domain; a domain that
// does not exist) and sends its DSNs to the bounce mailbox; "mailout
// bounces fetch" reads them from the real Dovecot over IMAP, and in a
// second campaign over POP3, and turns them into hard results and
// suppression entries; a second fetch changes nothing.
func TestPostfixBouncesFetched(t *testing.T) {
	p := peertest.Postfix(t)
	b := peertest.Bounce(t)
	for _, tc := range []struct{ name, url string }{
		{"imap", "imap://" + b.User + "@" + b.IMAP},
		{"pop3", "pop3://" + b.User + "@" + b.POP3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clean(t)
			b.Clean(t)
			nullmx, nx := "info@"+b.NullMXDomain, "info@"+b.NXDomain
			ok := "ok-" + tc.name + "@" + p.LocalDomain
			list := writeList(t, b.Unknown, nullmx, nx, ok)
			db := filepath.Join(t.TempDir(), "mailout.db")
			env := map[string]string{"PEER_PASS": p.Pass, "BOX_PASS": b.Pass}
			r := mailout(t, env, "send", "--db", db, "--campaign", "late", "--recipients", list,
				"--message", writeMessage(t, testMessage),
				"--relay", fmt.Sprintf("smtp://%s@%s?password-env=PEER_PASS", p.User, p.Submission),
				"--relay-ca", p.CAFile, "--return-path", "bounces@"+b.Domain, "--rate", "0")
			if r.code != exitOK {
				t.Fatalf("send exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			for email, row := range byEmail(reportRows(t, db, "late")) {
				if row["state"] != "delivered" {
					t.Fatalf("%s: %v before the bounces, want delivered (Postfix took it)", email, row["state"])
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			if err := b.WaitMessages(ctx, 3); err != nil {
				t.Fatal(err)
			}
			fetch := func() map[string]int {
				t.Helper()
				r := mailout(t, env, "bounces", "fetch", "--db", db, "--mailbox", tc.url,
					"--mailbox-password-env", "BOX_PASS", "--mailbox-ca", b.CAFile, "--json")
				if r.code != exitOK {
					t.Fatalf("bounces fetch exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
				}
				var got map[string]int
				if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
					t.Fatalf("%v: %s", err, r.stdout)
				}
				return got
			}
			if got := fetch(); got["read"] != 3 || got["bounced"] != 3 || got["suppressed"] != 3 || got["review"] != 0 {
				t.Errorf("first fetch %v: want 3 read, bounced and suppressed", got)
			}
			check := func() {
				t.Helper()
				rows := byEmail(reportRows(t, db, "late"))
				for email, class := range map[string]string{b.Unknown: "recipient-unknown", nullmx: "no-mail-server", nx: "dns-nxdomain"} {
					if row := rows[email]; row["state"] != "failed" || row["class"] != class || row["bounced_at"] == nil {
						t.Errorf("%s: %v %v bounced_at %v; want failed %s, bounced after delivery", email, row["state"], row["class"], row["bounced_at"], class)
					}
				}
				if row := rows[ok]; row["state"] != "delivered" {
					t.Errorf("%s: %v, want delivered", ok, row["state"])
				}
				sup := mailout(t, nil, "suppression", "list", "--db", db, "--format", "csv")
				for _, e := range []string{b.Unknown, nullmx, nx} {
					if !strings.Contains(sup.stdout, e+",hard-bounce") {
						t.Errorf("%s not suppressed as hard-bounce:\n%s", e, sup.stdout)
					}
				}
				if strings.Contains(sup.stdout, ok) {
					t.Errorf("%s suppressed", ok)
				}
			}
			check()
			if got := fetch(); got["read"] != 0 || got["bounced"] != 0 || got["suppressed"] != 0 {
				t.Errorf("second fetch %v: want nothing read or changed", got)
			}
			check()
		})
	}
}

// A signed campaign passes through a real Postfix (STARTTLS, SASL AUTH)
// and every message, as Postfix delivered it (with its Received and
// Return-Path headers added), still verifies with the published record:
// nothing mailout signs is changed on the way.
func TestPostfixRelayKeepsDKIMValid(t *testing.T) {
	p := peertest.Postfix(t)
	for _, algo := range []string{"rsa", "ed25519"} {
		t.Run(algo, func(t *testing.T) {
			key, record := keygen(t, algo)
			var emails []string
			for i := range 10 {
				emails = append(emails, fmt.Sprintf("dkim-%s-%02d@example.org", algo, i))
			}
			msgFile := writeMessage(t, "From: Tienda <news@example.com>\nSubject: Hola {{.first_name}} ñandú\n\nQuerido {{.first_name}},\n.línea con punto\n"+
				strings.Repeat("una línea larga ", 80)+"\n{{.email}}\n")
			p.Clean(t)
			db := filepath.Join(t.TempDir(), "mailout.db")
			r := mailout(t, map[string]string{"PEER_PASS": p.Pass}, "send", "--db", db, "--campaign", "dkim-"+algo,
				"--recipients", writeList(t, emails...), "--message", msgFile,
				"--relay", fmt.Sprintf("smtp://%s@%s?password-env=PEER_PASS", p.User, p.Submission), "--relay-ca", p.CAFile,
				"--helo", "sender.mailout.test", "--dkim-key", key, "--dkim-selector", "s1", "--rate", "0")
			if r.code != exitOK {
				t.Fatalf("send exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			if err := p.WaitDelivered(ctx, t, len(emails)); err != nil {
				t.Fatal(err)
			}
			for _, e := range emails {
				got := p.Delivered(t, e)
				if len(got) != 1 {
					t.Errorf("%s: %d messages at Postfix, want 1", e, len(got))
					continue
				}
				raw := got[0]
				vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(raw), &msgdkim.VerifyOptions{
					LookupTXT: func(name string) ([]string, error) {
						if name == "s1._domainkey.example.com" {
							return []string{record}, nil
						}
						return nil, fmt.Errorf("no TXT at %s", name)
					}})
				if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.com" {
					t.Errorf("%s as Postfix delivered it: verify err %v, verifications %+v", e, err, vs)
				}
			}
		})
	}
}
