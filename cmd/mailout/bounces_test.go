package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"mailout/internal/smtptest"
)

const boxPass = "B0x-Secret-7"

// bounceBox is go-imap's in-memory IMAP server with STARTTLS on loopback,
// standing for the mailbox the return path delivers to.
type bounceBox struct {
	addr string
	user *imapmemserver.User
	ca   string
}

func startBounceBox(t *testing.T) *bounceBox {
	t.Helper()
	tc, _, _ := smtptest.NewTestCert(t)
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("bounces", boxPass)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:      imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		TLSConfig: tc,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with the listener
	t.Cleanup(func() { srv.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tc.Certificates[0].Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &bounceBox{addr: ln.Addr().String(), user: u, ca: ca}
}

func (b *bounceBox) deliver(t *testing.T, msg string) {
	t.Helper()
	if _, err := b.user.Append("INBOX", bytes.NewReader([]byte(msg)), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

// dsnTo is the RFC 3464 report a receiving MTA sends to the envelope
// sender when it refuses rcpt after accepting the message.
func dsnTo(envFrom, rcpt string) string {
	return fmt.Sprintf("To: %s\r\nFrom: MAILER-DAEMON@mx.example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"+
		"--b\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n\r\n"+
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"+
		"Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.1.1\r\n"+
		"Diagnostic-Code: smtp; 550 5.1.1 <%s>: Recipient address rejected: User unknown\r\n\r\n--b--\r\n", envFrom, rcpt, rcpt)
}

var verpRe = regexp.MustCompile(`^bounces\+([a-z2-7]{10,40})@example\.com$`)

// A campaign sent with --return-path goes out with a VERP envelope sender
// per message; a DSN that comes back to one of them, read by "mailout
// bounces fetch", fails that delivered recipient with the bounce's class
// and suppresses it; a second fetch changes nothing; what is no bounce is
// listed by "mailout bounces review".
func TestReturnPathBounceFetchedOverIMAP(t *testing.T) {
	s, fp := provider(t)
	db := filepath.Join(t.TempDir(), "mailout.db")
	list := writeList(t, "ok@example.org", "gone@example.org")
	r := mailout(t, nil, "send", "--db", db, "--campaign", "c1", "--recipients", list,
		"--message", writeMessage(t, testMessage), "--relay", relayURL(s, fp, relayPass),
		"--return-path", "bounces@example.com", "--wait", "1m")
	if r.code != exitOK {
		t.Fatalf("send: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	from := map[string]string{}
	tokens := map[string]bool{}
	for _, m := range s.Messages() {
		mm := verpRe.FindStringSubmatch(m.From)
		if mm == nil {
			t.Fatalf("envelope sender %q, want bounces+TOKEN@example.com", m.From)
		}
		if strings.Contains(m.From, m.Rcpts[0]) {
			t.Fatalf("envelope sender %q shows the recipient", m.From)
		}
		tokens[mm[1]] = true
		from[m.Rcpts[0]] = m.From
		if !bytes.Contains(m.Data, []byte("<news@example.com>")) {
			t.Errorf("the From header changed:\n%s", m.Data)
		}
	}
	if len(from) != 2 || len(tokens) != 2 {
		t.Fatalf("envelope senders %v: want one distinct token per recipient", from)
	}

	box := startBounceBox(t)
	box.deliver(t, dsnTo(from["gone@example.org"], "gone@example.org"))
	// A forged token (another key) and an out-of-office reply are kept
	// for review, and change nothing.
	box.deliver(t, dsnTo("bounces+aaaaaaaaaaaaaaaaaaaaaaaaaa@example.com", "ok@example.org"))
	box.deliver(t, "To: bounces@example.com\r\nFrom: ok@example.org\r\nSubject: Out of office\r\n\r\nBack Monday.\r\n")

	env := map[string]string{"BOX_PASS": boxPass}
	fetch := func() map[string]int {
		t.Helper()
		r := mailout(t, env, "bounces", "fetch", "--db", db, "--mailbox", "imap://bounces@"+box.addr,
			"--mailbox-password-env", "BOX_PASS", "--mailbox-ca", box.ca, "--json")
		if r.code != exitOK {
			t.Fatalf("bounces fetch: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, boxPass) {
			t.Fatal("the mailbox password was printed")
		}
		var got map[string]int
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		return got
	}
	if got := fetch(); got["read"] != 3 || got["bounced"] != 1 || got["suppressed"] != 1 || got["review"] != 2 {
		t.Errorf("first fetch %v: want 3 read, 1 bounced and suppressed, 2 for review", got)
	}
	check := func() {
		t.Helper()
		rows := byEmail(reportRows(t, db, "c1"))
		if g := rows["gone@example.org"]; g["state"] != "failed" || g["class"] != "recipient-unknown" || g["bounced_at"] == nil || g["enhanced"] != "5.1.1" {
			t.Errorf("bounced recipient: %v; want failed recipient-unknown 5.1.1 with bounced_at", g)
		}
		if g := rows["ok@example.org"]; g["state"] != "delivered" || g["bounced_at"] != nil {
			t.Errorf("delivered recipient: %v", g)
		}
		sup := mailout(t, nil, "suppression", "list", "--db", db, "--format", "csv")
		if !strings.Contains(sup.stdout, "gone@example.org,hard-bounce") || strings.Contains(sup.stdout, "ok@example.org") {
			t.Errorf("suppression list:\n%s", sup.stdout)
		}
		rev := mailout(t, nil, "bounces", "review", "--db", db)
		if rev.code != exitOK || !strings.Contains(rev.stdout, "Out of office") || strings.Count(rev.stdout, "\n") != 3 {
			t.Errorf("bounces review: exit %d\n%s", rev.code, rev.stdout)
		}
	}
	check()
	if got := fetch(); got["read"] != 0 || got["bounced"] != 0 || got["review"] != 0 {
		t.Errorf("second fetch %v: want nothing read or changed", got)
	}
	check()
}

func TestBouncesFetchRefusesPasswordInURL(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, nil, "bounces", "fetch", "--db", db, "--mailbox", "imaps://bounces:"+boxPass+"@127.0.0.1:1")
	if r.code != exitUsage || strings.Contains(r.stdout+r.stderr, boxPass) {
		t.Fatalf("exit %d (want %d, without the password shown)\n%s%s", r.code, exitUsage, r.stdout, r.stderr)
	}
}
