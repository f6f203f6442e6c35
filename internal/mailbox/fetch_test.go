package mailbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"mailout/internal/outcome"
	"mailout/internal/pop3"
	"mailout/internal/pop3/pop3test"
	"mailout/internal/queue"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/store/sqlite"
	"mailout/internal/verp"
)

const boxPass = "B0unce-Box-Secret"

// fixture is a database with one campaign of three delivered messages.
type fixture struct {
	st  store.Store
	c   *store.Campaign
	ds  []store.Delivery
	sig *verp.Signer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &store.Campaign{Name: "december", Status: store.CampaignRunning}
	emails := []string{"gone@far.example", "annoyed@far.example", "happy@far.example"}
	i := 0
	err = st.ImportCampaign(ctx, c, func() (*store.NewRecipient, error) {
		if i == len(emails) {
			return nil, nil
		}
		e := emails[i]
		i++
		return &store.NewRecipient{Line: i + 1, Email: e, Domain: "far.example", Key: e}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ds, err := st.Claim(ctx, c.ID, "t", now, time.Minute, 10)
	if err != nil || len(ds) != 3 {
		t.Fatalf("claim %d, %v", len(ds), err)
	}
	var rs []store.AttemptResult
	for _, d := range ds {
		rs = append(rs, store.AttemptResult{DeliveryID: d.ID, Attempt: d.Attempts, State: queue.Delivered,
			Class: outcome.Delivered, MessageID: fmt.Sprintf("m%d@example.com", d.ID), At: now})
	}
	if n, err := st.Record(ctx, rs); err != nil || n != 3 {
		t.Fatalf("record %d, %v", n, err)
	}
	sig, err := verp.LoadOrCreate(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, c: c, ds: ds, sig: sig}
}

// messages are what the bounce mailbox holds: a DSN to the VERP address
// of the first delivery, a complaint about the second matched by its
// Message-ID only, and an out-of-office reply.
func (f *fixture) messages() [][]byte {
	d0, d1 := f.ds[0], f.ds[1]
	verpTo := f.sig.Address("bounces@example.com", verp.Ref{CampaignID: f.c.ID, DeliveryID: d0.ID, Attempt: d0.Attempts})
	dsn := fmt.Sprintf(`To: %s
From: MAILER-DAEMON@mx.far.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

The mail system could not deliver your message.
.leading dot line

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.far.example

Final-Recipient: rfc822; %s
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <%s>: Recipient address rejected: User unknown

--B--
`, verpTo, d0.Email, d0.Email)
	arf := fmt.Sprintf(`To: fbl@example.com
From: fbl@far.example
Subject: complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="R"

--R
Content-Type: text/plain

A complaint.

--R
Content-Type: message/feedback-report

Feedback-Type: abuse
Version: 1

--R
Content-Type: text/rfc822-headers

From: news@example.com
To: %s
Message-ID: <m%d@example.com>
--R--
`, d1.Email, d1.ID)
	ooo := "To: bounces@example.com\nFrom: someone@far.example\nSubject: Out of office\n\nBack on Monday.\n"
	return [][]byte{[]byte(dsn), []byte(arf), []byte(ooo)}
}

// check asserts the database after one fetch of messages().
func (f *fixture) check(t *testing.T) {
	t.Helper()
	f.checkReviews(t, "Out of office")
}

// checkReviews is check, with the subjects of the messages kept for
// review.
func (f *fixture) checkReviews(t *testing.T, subjects ...string) {
	t.Helper()
	ctx := context.Background()
	rows := map[int64]store.Delivery{}
	if err := f.st.Deliveries(ctx, f.c.ID, store.DeliveryFilter{}, func(d *store.Delivery) error { rows[d.ID] = *d; return nil }); err != nil {
		t.Fatal(err)
	}
	if d := rows[f.ds[0].ID]; d.State != queue.Failed || d.Class != outcome.RecipientUnknown || d.BouncedAt.IsZero() || d.DeliveredAt.IsZero() {
		t.Errorf("bounced delivery: %s %s bounced %v delivered %v; want failed recipient-unknown, bounced after delivery", d.State, d.Class, d.BouncedAt, d.DeliveredAt)
	}
	if d := rows[f.ds[1].ID]; d.State != queue.Delivered || d.ComplainedAt.IsZero() {
		t.Errorf("complained delivery: %s complained %v", d.State, d.ComplainedAt)
	}
	if d := rows[f.ds[2].ID]; d.State != queue.Delivered || !d.BouncedAt.IsZero() || !d.ComplainedAt.IsZero() {
		t.Errorf("untouched delivery changed: %+v", d)
	}
	got := map[string]string{}
	_ = f.st.Suppressions(ctx, func(s *store.Suppression) error { got[s.Key] = s.Reason; return nil })
	want := map[string]string{f.ds[0].Key: store.ReasonHardBounce, f.ds[1].Key: store.ReasonComplaint}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("suppression list %v, want %v", got, want)
	}
	var reviews []string
	_ = f.st.Reviews(ctx, func(r *store.Review) error { reviews = append(reviews, r.Subject); return nil })
	if !slices.Equal(reviews, subjects) {
		t.Errorf("kept for review: %q, want %q", reviews, subjects)
	}
}

func wantSummary(t *testing.T, got *Summary, want Summary) {
	t.Helper()
	if *got != want {
		t.Errorf("summary %+v, want %+v", *got, want)
	}
}

var first = Summary{Read: 3, Bounced: 1, Complaints: 1, Suppressed: 2, Review: 1}

func caFile(t *testing.T, tc *tls.Config) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tc.Certificates[0].Certificate[0]})
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFetchPOP3STLS(t *testing.T) {
	f := newFixture(t)
	tc, _, _ := smtptest.NewTestCert(t)
	srv := pop3test.Start(t, pop3test.Options{User: "bounces", Pass: boxPass, TLS: tc})
	for i, m := range f.messages() {
		srv.Add(fmt.Sprintf("uid-%d", i), m)
	}
	c, err := Parse("pop3://bounces@" + srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Password, c.CAFile = boxPass, caFile(t, tc)
	sum, err := Fetch(t.Context(), c, f.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSummary(t, sum, first)
	f.check(t)
	if srv.PlainPass != 0 {
		t.Error("the password was sent before STLS")
	}
	// A second run reads nothing and changes nothing; nothing was deleted.
	sum, err = Fetch(t.Context(), c, f.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSummary(t, sum, Summary{})
	f.check(t)
	if srv.Count() != 3 {
		t.Errorf("maildrop holds %d messages, want the 3 (nothing deleted)", srv.Count())
	}
}

func TestPOP3WithoutSTLSRefused(t *testing.T) {
	f := newFixture(t)
	srv := pop3test.Start(t, pop3test.Options{User: "bounces", Pass: boxPass})
	c, _ := Parse("pop3://bounces@" + srv.Addr)
	c.Password = boxPass
	_, err := Fetch(t.Context(), c, f.st, nil)
	if !errors.Is(err, pop3.ErrNoSTLS) {
		t.Fatalf("err %v, want pop3.ErrNoSTLS", err)
	}
	if srv.PlainPass != 0 || srv.Logins != 0 {
		t.Error("logged in without TLS")
	}
}

// imapServer starts go-imap's in-memory server with STARTTLS on loopback.
func imapServer(t *testing.T, tc *tls.Config, msgs [][]byte) string {
	return imapServerAuth(t, tc, msgs, false)
}

func imapServerAuth(t *testing.T, tc *tls.Config, msgs [][]byte, insecureAuth bool) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("bounces", boxPass)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := u.Append("INBOX", bytes.NewReader(m), &imap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		TLSConfig:    tc,
		InsecureAuth: insecureAuth,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with the listener
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestFetchIMAPSTARTTLS(t *testing.T) {
	f := newFixture(t)
	tc, pool, _ := smtptest.NewTestCert(t)
	addr := imapServer(t, tc, f.messages())
	c, err := Parse("imap://bounces@" + addr + "/INBOX")
	if err != nil {
		t.Fatal(err)
	}
	c.Password, c.CAFile = boxPass, caFile(t, tc)
	sum, err := Fetch(t.Context(), c, f.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSummary(t, sum, first)
	f.check(t)

	// Every message is flagged \Seen and $MailoutProcessed.
	host, _, _ := net.SplitHostPort(addr)
	cl, err := imapclient.DialStartTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{ServerName: host, RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Login("bounces", boxPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := cl.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(msgs) != 3 {
		t.Fatalf("fetch flags: %d, %v", len(msgs), err)
	}
	for _, m := range msgs {
		// RFC 9051 §2.3.2: flags compare case-insensitively.
		has := func(f imap.Flag) bool {
			return slices.ContainsFunc(m.Flags, func(g imap.Flag) bool { return strings.EqualFold(string(g), string(f)) })
		}
		if !has(imap.FlagSeen) || !has(Keyword) {
			t.Errorf("message %d flags %v, want \\Seen and %s", m.SeqNum, m.Flags, Keyword)
		}
	}

	sum, err = Fetch(t.Context(), c, f.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSummary(t, sum, Summary{})
	f.check(t)
}

func TestIMAPWithoutSTARTTLSRefused(t *testing.T) {
	f := newFixture(t)
	// The server would take the password in clear: mailout must not
	// send it.
	addr := imapServerAuth(t, nil, f.messages(), true)
	c, _ := Parse("imap://bounces@" + addr)
	c.Password = boxPass
	if _, err := Fetch(t.Context(), c, f.st, nil); err == nil {
		t.Fatal("fetch over a server without STARTTLS succeeded")
	}
	// imap+insecure:// is the lab's explicit opt-out.
	c, _ = Parse("imap+insecure://bounces@" + addr)
	c.Password = boxPass
	sum, err := Fetch(t.Context(), c, f.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSummary(t, sum, first)
}

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		in, out string
		proto   Protocol
		sec     Security
	}{
		{"imap://bounces@mail.example.com", "imap://bounces@mail.example.com:143/INBOX", IMAP, StartTLS},
		{"imaps://bounces%40example.com@mail.example.com/Bounces", "imaps://bounces%40example.com@mail.example.com:993/Bounces", IMAP, ImplicitTLS},
		{"imap+insecure://u@127.0.0.1:1143", "imap+insecure://u@127.0.0.1:1143/INBOX", IMAP, Insecure},
		{"pop3://bounces@example.com@mail.example.com", "pop3://bounces%40example.com@mail.example.com:110", POP3, StartTLS},
		{"pop3s://u@[::1]", "pop3s://u@[::1]:995", POP3, ImplicitTLS},
	} {
		c, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if c.String() != tt.out || c.Protocol != tt.proto || c.Security != tt.sec {
			t.Errorf("Parse(%q) = %s %s %d; want %s %s %d", tt.in, c, c.Protocol, c.Security, tt.out, tt.proto, tt.sec)
		}
	}
	for _, bad := range []string{"http://u@h", "imap://h", "imap://u:secret@h", "pop3://u@h/Folder", "imap://u@h?x=1", "imap://u@"} {
		c, err := Parse(bad)
		if !errors.Is(err, ErrURL) {
			t.Errorf("Parse(%q) = %v, %v; want ErrURL", bad, c, err)
		}
		if err != nil && bytes.Contains([]byte(err.Error()), []byte("secret")) {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// huge is a message of about size bytes, subject "Huge", with a leading
// dot on one line and a line longer than any read buffer.
func huge(size int) []byte {
	var b bytes.Buffer
	b.WriteString("To: bounces@example.com\r\nFrom: someone@far.example\r\nSubject: Huge\r\n\r\n.dot\r\n")
	b.WriteString(strings.Repeat("x", 20000) + "\r\n")
	for b.Len() < size {
		b.WriteString(strings.Repeat("y", 998) + "\r\n")
	}
	return b.Bytes()
}

// A message over the size limit ahead of the bounces is kept for review
// with its start, and the bounces after it are applied in the same run:
// one message can never hold up the mailbox.
func TestFetchKeepsAMessageOverTheLimitForReview(t *testing.T) {
	const limit = 64 << 10
	for _, proto := range []string{"pop3", "imap"} {
		t.Run(proto, func(t *testing.T) {
			f := newFixture(t)
			tc, _, _ := smtptest.NewTestCert(t)
			msgs := append([][]byte{huge(3 * limit)}, f.messages()...)
			var c *Config
			var err error
			if proto == "pop3" {
				srv := pop3test.Start(t, pop3test.Options{User: "bounces", Pass: boxPass, TLS: tc})
				for i, m := range msgs {
					srv.Add(fmt.Sprintf("uid-%d", i), m)
				}
				c, err = Parse("pop3://bounces@" + srv.Addr)
			} else {
				c, err = Parse("imap://bounces@" + imapServer(t, tc, msgs) + "/INBOX")
			}
			if err != nil {
				t.Fatal(err)
			}
			c.Password, c.CAFile, c.MaxMessage = boxPass, caFile(t, tc), limit
			sum, err := Fetch(t.Context(), c, f.st, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := first
			want.Read++
			want.Review++
			wantSummary(t, sum, want)
			f.checkReviews(t, "Huge", "Out of office")
			var kept *store.Review
			_ = f.st.Reviews(t.Context(), func(r *store.Review) error {
				if r.Subject == "Huge" {
					kept = r
				}
				return nil
			})
			if kept == nil || !strings.Contains(kept.Reason, "over the size limit") || !strings.Contains(kept.Reason, fmt.Sprint(limit)) {
				t.Fatalf("review of the large message: %+v; want a reason that says it is over the limit of %d", kept, limit)
			}
			if len(kept.Data) != limit || !bytes.HasPrefix(msgs[0], kept.Data) {
				t.Errorf("kept %d bytes of the large message, want its first %d", len(kept.Data), limit)
			}
			sum, err = Fetch(t.Context(), c, f.st, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantSummary(t, sum, Summary{})
		})
	}
}

// A POP3 message far over the limit is not read to its end: the session
// is dropped, the message is kept for review all the same, and the next
// fetch goes on with the messages after it.
func TestFetchPOP3GoesOnAfterAMessageFarOverTheLimit(t *testing.T) {
	const limit = 16 << 10
	f := newFixture(t)
	tc, _, _ := smtptest.NewTestCert(t)
	srv := pop3test.Start(t, pop3test.Options{User: "bounces", Pass: boxPass, TLS: tc})
	for i, m := range append([][]byte{huge(40 * limit)}, f.messages()...) {
		srv.Add(fmt.Sprintf("uid-%d", i), m)
	}
	c, err := Parse("pop3://bounces@" + srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Password, c.CAFile, c.MaxMessage = boxPass, caFile(t, tc), limit
	sum, err := Fetch(t.Context(), c, f.st, nil)
	if err == nil {
		t.Fatal("the first fetch went on over a session that was dropped")
	}
	wantSummary(t, sum, Summary{Read: 1, Review: 1})
	sum, err = Fetch(t.Context(), c, f.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSummary(t, sum, first)
	f.checkReviews(t, "Huge", "Out of office")
}
