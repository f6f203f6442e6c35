package bounce

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"mailout/internal/outcome"
)

// want is what a sample must give.
type want struct {
	kind      Kind
	format    Format
	addr      string
	status    string
	code      int
	class     outcome.Class
	hard      bool
	token     string
	messageID string
	feedback  string
}

var corpus = map[string]want{
	"postfix-user-unknown.eml": {Failure, FormatDSN, "nobody@recipient.example", "5.1.1", 550, outcome.RecipientUnknown, true, "aebagbqaky5dgnhxsbkfgu", "a1b2c3d4.17@example.com", ""},
	"postfix-delayed.eml":      {Delay, FormatDSN, "slow@recipient.example", "4.4.1", 0, outcome.Temporary, false, "delaytoken", "delayed.5@example.com", ""},
	"postfix-mailbox-full.eml": {Failure, FormatDSN, "full@recipient.example", "5.2.2", 552, outcome.MailboxFull, false, "fulltoken", "", ""},
	"postfix-nxdomain.eml":     {Failure, FormatDSN, "someone@nosuch.invalid", "5.4.4", 0, outcome.DNSNXDomain, true, "nxtoken", "", ""},
	"postfix-nullmx.eml":       {Failure, FormatDSN, "info@nullmx.example", "5.1.10", 0, outcome.NoMailServer, true, "nulltoken", "", ""},
	// The sender's DMARC failed at the receiver: a failure, but not a
	// hard bounce: the address is fine and is not suppressed.
	"postfix-dmarc-reject.eml": {Failure, FormatDSN, "reader@gmail.example", "5.7.26", 550, outcome.SenderUnauthenticated, false, "dmarctoken", "", ""},
	"exim-unknown.eml":         {Failure, FormatExim, "ghost@recipient.example", "5.1.1", 550, outcome.RecipientUnknown, true, "eximtoken", "exim.42@example.com", ""},
	"qmail-unknown.eml":        {Failure, FormatQmail, "gone@oldhost.example", "5.1.1", 0, outcome.RecipientUnknown, true, "qmailtoken", "qmail.7@example.com", ""},
	"qmail-remote.eml":         {Failure, FormatQmail, "spam-trap@far.example", "5.7.1", 550, outcome.ContentRejected, true, "qmailremote", "qmail.8@example.com", ""},
	"exchange-legacy.eml":      {Failure, FormatExchange, "left.company@corp.example", "5.1.10", 550, outcome.RecipientUnknown, true, "exchtoken", "exchange.9@example.com", ""},
	"o365-dsn.eml":             {Failure, FormatDSN, "nobody@contoso.example", "5.1.10", 550, outcome.RecipientUnknown, true, "o365token", "o365.10@example.com", ""},
	"gmail-unknown.eml":        {Failure, FormatGmail, "missing@far.example", "5.1.1", 550, outcome.RecipientUnknown, true, "gmailtoken", "gmail.11@example.com", ""},
	"yahoo-unknown.eml":        {Failure, FormatYahoo, "noaccount@yahoo.example", "5.0.0", 554, outcome.RecipientUnknown, true, "yahootoken", "yahoo.12@example.com", ""},
	"arf-abuse.eml":            {Complaint, FormatARF, "annoyed@provider.example", "", 0, "", false, "arftoken", "arf.13@example.com", "abuse"},
	"arf-redacted.eml":         {Complaint, FormatARF, "someone@big.example", "", 0, "", false, "", "arf.14@example.com", "abuse"},
}

func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			w, ok := corpus[name]
			rep, err := Parse(raw)
			if !ok {
				// Every other sample is no bounce: kept for review.
				if !errors.Is(err, ErrNotBounce) {
					t.Fatalf("Parse = %+v, %v; want ErrNotBounce", rep, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if rep.Kind != w.kind || rep.Format != w.format || rep.Token != w.token || rep.MessageID != w.messageID || rep.FeedbackType != w.feedback {
				t.Errorf("report kind %q format %q token %q message-id %q feedback %q;\nwant %q %q %q %q %q",
					rep.Kind, rep.Format, rep.Token, rep.MessageID, rep.FeedbackType, w.kind, w.format, w.token, w.messageID, w.feedback)
			}
			if len(rep.Recipients) != 1 {
				t.Fatalf("recipients %+v, want one", rep.Recipients)
			}
			r := rep.Recipients[0]
			if r.Address != w.addr || r.Status != w.status || r.Code != w.code || r.Result.Class != w.class || r.Hard != w.hard {
				t.Errorf("recipient %s status %q code %d class %q hard %v;\nwant %s %q %d %q %v (diagnostic %q, reason %q)",
					r.Address, r.Status, r.Code, r.Result.Class, r.Hard, w.addr, w.status, w.code, w.class, w.hard, r.Diagnostic, r.Result.Reason)
			}
			if w.kind != Complaint && r.Diagnostic == "" {
				t.Error("no diagnostic text")
			}
		})
	}
	for name := range corpus {
		if _, err := os.Stat(filepath.Join("testdata", name)); err != nil {
			t.Errorf("corpus entry %s: %v", name, err)
		}
	}
}

func TestNotAMessage(t *testing.T) {
	if _, err := Parse([]byte("no header here")); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotBounce) {
		t.Fatalf("err %v", err)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rep, err := Parse(raw)
		if err != nil {
			if !errors.Is(err, ErrNotBounce) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if rep.Kind == "" || rep.Format == "" {
			t.Fatalf("report without kind or format: %+v", rep)
		}
		for _, r := range rep.Recipients {
			if r.Hard && rep.Kind != Failure {
				t.Fatalf("hard recipient in a %s report", rep.Kind)
			}
		}
	})
}
