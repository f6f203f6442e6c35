package web

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"mailout/internal/audience"
	"mailout/internal/campaign"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/secret"
	"mailout/internal/setting"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

const threeSubscribers = "email,first_name\nann@example.org,Ann\nbob@example.org,Bob\ncid@example.org,Cid\n"

// composeApp is a signed-in app with stored settings and a list.
type composeApp struct {
	*app
	list *store.List
	subs []store.Subscriber
}

// newComposeApp opens an app with a secret key, the settings given (nil:
// none) and, unless csv is "", a list "members" of csv.
func newComposeApp(t *testing.T, st *setting.Settings, csv string, limits campaign.FileLimits) *composeApp {
	t.Helper()
	key, err := secret.NewKey(secret.Generate())
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(t, appOptions{doctor: func(c *Config) { c.SecretKey, c.FileLimits = key, limits }})
	a.signIn()
	ctx := context.Background()
	if st != nil {
		if err := setting.Save(ctx, a.svc.Store(), key, st); err != nil {
			t.Fatal(err)
		}
	}
	ca := &composeApp{app: a}
	if csv == "" {
		return ca
	}
	aud := audience.New(a.svc.Store())
	if ca.list, err = aud.Create(ctx, "members"); err != nil {
		t.Fatal(err)
	}
	if _, err := aud.Import(ctx, ca.list.ID, strings.NewReader(csv), "test", recipient.Options{}); err != nil {
		t.Fatal(err)
	}
	if ca.subs, err = aud.Subscribers(ctx, ca.list.ID, store.SubscriberFilter{}); err != nil {
		t.Fatal(err)
	}
	return ca
}

// form is a compose form for the app's list.
func (a *composeApp) form(action string) url.Values {
	v := url.Values{"name": {"spring"}, "from": {"Shop <news@example.com>"}, "subject": {"Hello {{.first_name}}"},
		"text": {"Dear {{.first_name}},\r\nyour address is {{.email}}.\r\n"}, "route": {"sandbox"},
		"profile": {"normal"}, "action": {action}}
	if a.list != nil {
		v.Set("list", itoa(a.list.ID))
	}
	return v
}

// file is an attachment to upload.
type file struct {
	name string
	data []byte
}

// postForm posts the compose form as the browser does (multipart).
func (a *composeApp) postForm(path string, v url.Values, files ...file) (*http.Response, string) {
	a.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range v {
		for _, s := range vs {
			_ = mw.WriteField(k, s)
		}
	}
	for _, f := range files {
		w, _ := mw.CreateFormFile("attachments", f.name)
		_, _ = w.Write(f.data)
	}
	_ = mw.Close()
	return a.do(http.MethodPost, path, &buf, http.Header{"Content-Type": {mw.FormDataContentType()}})
}

func (a *composeApp) campaigns() []store.Campaign {
	a.t.Helper()
	cs, err := a.svc.Store().Campaigns(context.Background())
	if err != nil {
		a.t.Fatal(err)
	}
	return cs
}

// The campaign list links to the compose page; without a list the page
// says so and links to the lists.
func TestComposeWithoutAListSendsToTheLists(t *testing.T) {
	a := newComposeApp(t, nil, "", campaign.FileLimits{})
	if _, body := a.get("/campaigns"); !strings.Contains(body, `href="/campaigns/new"`) {
		t.Error("the campaign list has no link to a new campaign")
	}
	res, body := a.get("/campaigns/new")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "There is no list yet") || !strings.Contains(body, `href="/lists"`) {
		t.Errorf("compose without a list: %s\n%s", res.Status, body)
	}
	res, _ = a.postForm("/campaigns/new", a.form("create"))
	if res.StatusCode != http.StatusUnprocessableEntity || len(a.campaigns()) != 0 {
		t.Errorf("create without a list: %s, %d campaigns", res.Status, len(a.campaigns()))
	}
}

// The empty form proposes the list, a name from it and the date, the
// first identity, the sandbox for a first run, and the list's merge fields.
func TestComposePageDefaults(t *testing.T) {
	a := newComposeApp(t, &setting.Settings{Identities: []setting.Identity{{Name: "Shop", From: "Shop <news@example.com>"}}},
		threeSubscribers, campaign.FileLimits{})
	res, body := a.get("/campaigns/new")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("compose: %s", res.Status)
	}
	for _, want := range []string{`value="members `, `value="Shop &lt;news@example.com&gt;"`, `id="r-sandbox" name="route" value="sandbox" checked`,
		"Nothing leaves this machine", `data-insert="{{.first_name}}"`, `<option value="slow"`, `<script src="/static/compose.js" defer></script>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the compose page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script>", "<style", " style=", " onclick=", " oninput="} {
		if strings.Contains(strings.ToLower(body), bad) {
			t.Errorf("the compose page holds %q, which the CSP blocks", bad)
		}
	}
}

// A template error is shown next to the body it is in, with its line in
// that body; what was typed stays in the form; nothing is stored.
func TestComposeShowsTemplateErrorsWithTheirLine(t *testing.T) {
	a := newComposeApp(t, nil, threeSubscribers, campaign.FileLimits{})
	v := a.form("create")
	v.Set("text", "Dear {{.first_name}},\nline two\nthe {{.first_name offer\n")
	res, body := a.postForm("/campaigns/new", v)
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a template that does not parse: %s", res.Status)
	}
	if !regexp.MustCompile(`<span id="err-text" class="field-error">Line 3: `).MatchString(body) {
		t.Errorf("no error with line 3 next to the text body:\n%s", body)
	}
	if !strings.Contains(body, "the {{.first_name offer") || !strings.Contains(body, `value="Hello {{.first_name}}"`) {
		t.Error("the page lost what was typed")
	}
	// A merge field the list does not have: found when the message is
	// rendered for the first subscriber.
	v.Set("html", "<p>Hi</p>\n<p>{{.nickname}}</p>\n")
	v.Set("text", "Dear {{.first_name}},\n")
	res, body = a.postForm("/campaigns/new", v)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `<span id="err-html" class="field-error">Line 2: `) {
		t.Errorf("an unknown merge field in the HTML: %s, want the error on line 2 of the HTML body", res.Status)
	}
	if n := len(a.campaigns()); n != 0 {
		t.Errorf("%d campaigns stored", n)
	}
}

// An attachment over the cap is refused, naming it; the page asks for
// the files again.
func TestComposeRefusesAnAttachmentOverTheCap(t *testing.T) {
	a := newComposeApp(t, nil, threeSubscribers, campaign.FileLimits{Attachments: 1 << 10})
	res, body := a.postForm("/campaigns/new", a.form("create"),
		file{"terms.txt", []byte("small")}, file{"brochure.pdf", bytes.Repeat([]byte("x"), 2000)})
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("an attachment over the cap: %s", res.Status)
	}
	if !strings.Contains(body, "brochure.pdf is over the 1 KiB cap") || !strings.Contains(body, "Choose these files again") {
		t.Errorf("the page does not name the file over the cap:\n%s", body)
	}
	if n := len(a.campaigns()); n != 0 {
		t.Errorf("%d campaigns stored", n)
	}
}

// Create stores the campaign with the list's subscribers as recipients,
// the relay accounts ticked (in the settings' order) and the profile
// chosen, and goes to its page; the attachment goes with it.
func TestComposeCreatesTheCampaignFromTheList(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	host, port := splitHostPort(t, srv.Addr)
	a := newComposeApp(t, &setting.Settings{HELO: "sender.mailout.test", Relays: []setting.RelayAccount{
		{Name: "first", Host: host, Port: port, TLS: setting.TLSNone},
		{Name: "second", Host: host, Port: port + 1, TLS: setting.TLSNone},
	}, Profiles: []setting.Profile{{Name: "gentle", Rate: 2, Connections: 1}}}, threeSubscribers, campaign.FileLimits{})
	v := a.form("create")
	v.Set("route", "relay")
	v["relay"] = []string{"second", "first"}
	v.Set("profile", "gentle")
	res, _ := a.postForm("/campaigns/new", v, file{"terms.txt", []byte("the terms")})
	cs := a.campaigns()
	if res.StatusCode != http.StatusSeeOther || len(cs) != 1 || res.Header.Get("Location") != "/campaigns/"+itoa(cs[0].ID) {
		t.Fatalf("create: %s to %q, %d campaigns", res.Status, res.Header.Get("Location"), len(cs))
	}
	c := a.campaign(cs[0].ID)
	n, err := a.svc.Store().Counts(context.Background(), c.ID)
	if err != nil || n.Total != 3 {
		t.Errorf("recipients %+v, %v; want the list's 3", n, err)
	}
	s, err := campaign.SettingsOf(c)
	if err != nil || s.Route != route.Relay || len(s.Relays) != 2 || !strings.Contains(s.Relays[0], itoa(int64(port))) {
		t.Errorf("route %+v, %v; want the relay accounts first then second", s, err)
	}
	var p throttle.Profile
	if err := json.Unmarshal(c.Profile, &p); err != nil || p.Name != "gentle" || p.Rate != 2 {
		t.Errorf("profile %+v, %v; want gentle", p, err)
	}
	if c.Name != "spring" || len(c.Message.Attachments) != 1 || c.Message.Attachments[0].Name != "terms.txt" {
		t.Errorf("campaign %q with attachments %v", c.Name, c.Message.Attachments)
	}
	if !strings.HasPrefix(string(c.Message.Template), "From: Shop <news@example.com>\nSubject: Hello {{.first_name}}\n\nDear") {
		t.Errorf("stored template %q", c.Message.Template)
	}
	if res, body := a.get("/campaigns/" + itoa(c.ID)); res.StatusCode != http.StatusOK || !strings.Contains(body, "spring") {
		t.Errorf("the campaign page: %s", res.Status)
	}
	// The relay route without an account ticked is refused.
	v.Del("relay")
	v.Set("name", "summer")
	if res, body := a.postForm("/campaigns/new", v); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Tick at least one relay account") {
		t.Errorf("relay without an account: %s", res.Status)
	}
}

// Create and start with the sandbox sends the campaign to its end: every
// subscriber's message is in the inbox.
func TestComposeCreateAndStartRunsTheSandboxToDone(t *testing.T) {
	a := newComposeApp(t, nil, threeSubscribers, campaign.FileLimits{})
	res, _ := a.postForm("/campaigns/new", a.form("start"))
	cs := a.campaigns()
	if res.StatusCode != http.StatusSeeOther || len(cs) != 1 {
		t.Fatalf("create and start: %s, %d campaigns", res.Status, len(cs))
	}
	a.runner.Wait()
	c := a.campaign(cs[0].ID)
	n, _ := a.svc.Store().Counts(context.Background(), c.ID)
	if c.Status != store.CampaignDone || n.Total != 3 || campaign.RouteOf(c) != route.Sandbox {
		t.Errorf("status %s, %d recipients, route %s; want done, 3, sandbox", c.Status, n.Total, campaign.RouteOf(c))
	}
	_, body := a.get("/inbox/" + itoa(c.ID))
	for _, s := range []string{"Hello Ann", "Hello Bob", "Hello Cid"} {
		if !strings.Contains(body, s) {
			t.Errorf("the inbox lacks %q", s)
		}
	}
}

// The preview renders the message for the chosen subscriber: headers and
// text as text, the HTML part in a sandboxed frame served under its own
// CSP. Nothing is stored.
func TestComposePreviewRendersForTheChosenSubscriber(t *testing.T) {
	a := newComposeApp(t, nil, threeSubscribers, campaign.FileLimits{})
	v := a.form("preview")
	v.Set("subscriber", itoa(a.subs[1].ID))
	v.Set("html", "<h1>Hi {{.first_name}}</h1><script>alert(1)</script><img src=\"https://tracker.example/p.gif\">")
	res, body := a.postForm("/campaigns/new", v)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("preview: %s", res.Status)
	}
	for _, want := range []string{"<dd>Hello Bob</dd>", "<dd>bob@example.org</dd>", "Dear Bob,\r\nyour address is bob@example.org."} {
		if !strings.Contains(body, want) {
			t.Errorf("the preview lacks %q", want)
		}
	}
	frame := regexp.MustCompile(`<iframe class="mail" sandbox src="(/campaigns/new/preview/[0-9a-f]+)"`).FindStringSubmatch(body)
	if frame == nil {
		t.Fatalf("no sandboxed frame of the HTML part:\n%s", body)
	}
	res, html := a.get(frame[1])
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Security-Policy") != InboxBodyCSP || !strings.Contains(html, "<h1>Hi Bob</h1>") {
		t.Errorf("the frame: %s, CSP %q, %q", res.Status, res.Header.Get("Content-Security-Policy"), html)
	}
	// With script, the form is posted as typed and the preview comes back
	// alone.
	v.Set("subscriber", itoa(a.subs[2].ID))
	res, frag := a.postForm("/campaigns/new/preview", v)
	if res.StatusCode != http.StatusOK || !strings.Contains(frag, "<dd>Hello Cid</dd>") || strings.Contains(frag, "<html") {
		t.Errorf("the preview fragment: %s\n%s", res.Status, frag)
	}
	// Search by address picks the subscriber.
	v.Del("subscriber")
	v.Set("search", "cid@")
	if _, body := a.postForm("/campaigns/new", v); !strings.Contains(body, "<dd>Hello Cid</dd>") {
		t.Error("searching cid@ does not preview Cid's message")
	}
	if n := len(a.campaigns()); n != 0 {
		t.Errorf("the preview stored %d campaigns", n)
	}
	// Another session cannot read the frame.
	other := newApp(t)
	if res, _ := other.get(frame[1]); res.StatusCode == http.StatusOK {
		t.Error("the frame is served without the session")
	}
}

// Send test: the message for the chosen subscriber goes to the typed
// address through the chosen route, and the page says it was delivered;
// a refusal is shown with its class and advice; no campaign is stored.
func TestComposeTestSend(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{LocalPartFaults: true})
	host, port := splitHostPort(t, srv.Addr)
	a := newComposeApp(t, &setting.Settings{HELO: "sender.mailout.test", Relays: []setting.RelayAccount{
		{Name: "lab", Host: host, Port: port, TLS: setting.TLSNone}}}, threeSubscribers, campaign.FileLimits{})
	v := a.form("test")
	v.Set("route", "relay")
	v.Set("relay", "lab")
	v.Set("subscriber", itoa(a.subs[1].ID))
	v.Set("test_to", "me@example.net")
	res, body := a.postForm("/campaigns/new", v)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "The test message was delivered to me@example.net.") {
		t.Fatalf("test send: %s\n%s", res.Status, body)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || len(msgs[0].Rcpts) != 1 || msgs[0].Rcpts[0] != "me@example.net" {
		t.Fatalf("the server got %+v, want one message to me@example.net", msgs)
	}
	data := string(msgs[0].Data)
	for _, want := range []string{"\r\nTo: me@example.net\r\n", "Subject: Hello Bob", "Dear Bob,"} {
		if !strings.Contains(data, want) {
			t.Errorf("the test message lacks %q:\n%s", want, data)
		}
	}
	v.Set("test_to", "unknown@example.net")
	_, body = a.postForm("/campaigns/new", v)
	if !strings.Contains(body, "was not delivered") || !strings.Contains(body, "<code>recipient-unknown</code>") {
		t.Errorf("a refused test does not show its class:\n%s", body)
	}
	// The sandbox sends nothing and shows the message.
	v.Set("route", "sandbox")
	v.Set("test_to", "me@example.net")
	_, body = a.postForm("/campaigns/new", v)
	if !strings.Contains(body, "Sandbox: nothing was sent to me@example.net") || !strings.Contains(body, "<dd>me@example.net</dd>") || len(srv.Messages()) != 1 {
		t.Errorf("a sandbox test: %d messages at the server\n%s", len(srv.Messages()), body)
	}
	if n := len(a.campaigns()); n != 0 {
		t.Errorf("test sends stored %d campaigns", n)
	}
}

func splitHostPort(t *testing.T, hostport string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}
