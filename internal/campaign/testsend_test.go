package campaign

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"mailout/internal/outcome"
	"mailout/internal/render"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/store"
)

func testDraft(t *testing.T, rc RouteConfig) (*Service, *Draft) {
	t.Helper()
	svc, err := Open(context.Background(), filepath.Join(t.TempDir(), "mailout.db"), true, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	rt, err := rc.Check(route.Sandbox, Env{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewCampaign{Name: "spring", Routing: rt, Profile: oneAtATime,
		Message: &store.Message{Template: []byte(testMessage), TemplateName: "message.txt"}}.Check(Env{})
	if err != nil {
		t.Fatal(err)
	}
	return svc, d
}

// A test send renders the message with the chosen subscriber's merge
// fields, addressed to the typed address, and sends it through the
// draft's relay; no campaign is stored.
func TestTestSendDeliversOneMessageToTheTypedAddress(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	svc, d := testDraft(t, RouteConfig{Relays: []string{"smtp+insecure://" + srv.Addr}, HELO: "sender.mailout.test"})
	ctx := context.Background()
	res, err := svc.TestSend(ctx, d, render.Recipient{Email: "ann@example.org", Fields: map[string]string{"first_name": "Ann"}}, "me@example.net")
	if err != nil || res.Sandbox || res.Class != outcome.Delivered {
		t.Fatalf("TestSend = %+v, %v; want delivered", res, err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || len(msgs[0].Rcpts) != 1 || msgs[0].Rcpts[0] != "me@example.net" {
		t.Fatalf("the relay got %+v, want one message to me@example.net", msgs)
	}
	body := string(msgs[0].Data)
	for _, want := range []string{"To: me@example.net", "Subject: Hello Ann", "Dear Ann,"} {
		if !strings.Contains(body, want) {
			t.Errorf("the test message lacks %q:\n%s", want, body)
		}
	}
	if cs, err := svc.Store().Campaigns(ctx); err != nil || len(cs) != 0 {
		t.Errorf("a test send stored campaigns: %v, %v", cs, err)
	}
}

// A refused test message comes back classified; a bad address is an
// InputError; the sandbox sends nothing and returns the message.
func TestTestSendReportsRefusalsAndKeepsTheSandboxLocal(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{LocalPartFaults: true})
	svc, d := testDraft(t, RouteConfig{Relays: []string{"smtp+insecure://" + srv.Addr}, HELO: "sender.mailout.test"})
	ctx := context.Background()
	fields := render.Recipient{Fields: map[string]string{"first_name": "Ann"}}
	res, err := svc.TestSend(ctx, d, fields, "unknown@example.net")
	if err != nil || res.Class != outcome.RecipientUnknown {
		t.Errorf("a refused address: %+v, %v; want %s", res, err, outcome.RecipientUnknown)
	}
	var ie *InputError
	if _, err := svc.TestSend(ctx, d, fields, "not an address"); !errors.As(err, &ie) || ie.Field != "to" {
		t.Errorf("a bad address: %v, want an InputError for to", err)
	}
	svc, d = testDraft(t, RouteConfig{Route: "sandbox"})
	res, err = svc.TestSend(ctx, d, fields, "me@example.net")
	if err != nil || !res.Sandbox || !strings.Contains(string(res.Data), "Dear Ann,") {
		t.Errorf("sandbox: %+v, %v; want the message kept here", res, err)
	}
}
