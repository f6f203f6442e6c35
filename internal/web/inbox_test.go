package web

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"mailout/internal/campaign"
	"mailout/internal/smtptest"
)

// The sandbox inbox lists a campaign's kept messages, shows one with its
// headers and its HTML in a sandboxed frame that can run no script, serves
// that HTML under its own strict CSP, and downloads the message as .eml.
func TestSandboxInbox(t *testing.T) {
	a := newApp(t)
	a.signIn()
	c := a.newCampaign("spring", campaign.RouteConfig{}, fiveRecipients, true)
	ctx := context.Background()
	if _, err := a.svc.Resume(ctx, c.ID, campaign.RunOptions{Profile: sandboxProfile}); err != nil {
		t.Fatal(err)
	}
	id := itoa(c.ID)
	_, list := a.get("/inbox")
	if !strings.Contains(list, `href="/inbox/`+id+`"`) {
		t.Fatal("the inbox does not list the sandbox campaign")
	}
	_, msgs := a.get("/inbox/" + id)
	links := regexp.MustCompile(`href="/inbox/`+id+`/(\d+)"`).FindAllStringSubmatch(msgs, -1)
	if len(links) != 5 || !strings.Contains(msgs, "Hello A") {
		t.Fatalf("the campaign's inbox lists %d messages, want 5 with their subjects", len(links))
	}
	did := links[0][1]
	var stored []byte
	_ = a.svc.Store().Messages(ctx, c.ID, func(d int64, _, _ string, data []byte) error {
		if itoa(d) == did {
			stored = data
		}
		return nil
	})

	res, page := a.get("/inbox/" + id + "/" + did)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "Subject") || !strings.Contains(page, "a@example.org") {
		t.Fatalf("message page: %s, without its headers", res.Status)
	}
	frame := regexp.MustCompile(`<iframe[^>]*>`).FindString(page)
	if !strings.Contains(frame, " sandbox ") && !strings.Contains(frame, " sandbox>") || strings.Contains(frame, "allow-scripts") || strings.Contains(frame, "allow-same-origin") ||
		!strings.Contains(frame, `src="/inbox/`+id+`/`+did+`/body"`) || !strings.Contains(frame, "title=") {
		t.Errorf("frame %q, want a titled <iframe sandbox> of the body without allow-scripts or allow-same-origin", frame)
	}
	if strings.Contains(page, "<script>alert(1)") {
		t.Error("the message's script is on the app's own page")
	}

	res, body := a.get("/inbox/" + id + "/" + did + "/body")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "<h1>Hello A</h1>") {
		t.Fatalf("body: %s %q", res.Status, body)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'none'; style-src 'unsafe-inline'; img-src data:") || strings.Contains(csp, "script-src") {
		t.Errorf("body CSP %q, want no script and no request", csp)
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("body without nosniff")
	}

	res, eml := a.get("/inbox/" + id + "/" + did + "/message.eml")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "message/rfc822" ||
		!strings.Contains(res.Header.Get("Content-Disposition"), "attachment") || !bytes.Equal([]byte(eml), stored) {
		t.Errorf(".eml: %s %q, same bytes as kept: %v", res.Status, res.Header.Get("Content-Type"), bytes.Equal([]byte(eml), stored))
	}
	if res, _ := a.get("/inbox/" + id + "/999999"); res.StatusCode != http.StatusNotFound {
		t.Errorf("a message that does not exist: %s", res.Status)
	}
}

// The doctor page checks a relay typed in its form and shows the
// checklist and verdict; the password typed is used but never sent back.
func TestDoctorPageChecksARelayWithoutEchoingThePassword(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"user@example.org": "s3cret-Pass-77"}})
	a := newApp(t)
	a.signIn()
	host, port, _ := strings.Cut(srv.Addr, ":")
	form := url.Values{"mode": {"relay"}, "host": {host}, "port": {port}, "tls": {"none"},
		"user": {"user@example.org"}, "password": {"s3cret-Pass-77"}, "helo": {"sender.mailout.test"}}
	res, page := a.do(http.MethodPost, "/doctor", strings.NewReader(form.Encode()), nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("doctor: %s", res.Status)
	}
	if strings.Contains(page, "s3cret-Pass-77") {
		t.Error("the doctor page sends the password back")
	}
	for _, want := range []string{"Verdict", "Checklist", "PASS", `value="` + host + `"`, `value="user@example.org"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the doctor page lacks %q", want)
		}
	}
	if !strings.Contains(page, "<code>ok</code>") {
		t.Errorf("a working relay is not ok:\n%s", page)
	}
	// A wrong password is a failing verdict, still without the password.
	form.Set("password", "Wrong-Pass-12")
	_, page = a.do(http.MethodPost, "/doctor", strings.NewReader(form.Encode()), nil)
	if strings.Contains(page, "Wrong-Pass-12") || !strings.Contains(page, "relay-auth-failed") {
		t.Error("a wrong password: no auth-failed verdict, or the password is echoed")
	}
	// An incomplete route is refused with a reason, and nothing is run.
	form.Set("port", "99999")
	if res := a.post("/doctor", form, nil); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("port 99999: %s, want 422", res.Status)
	}
}
