package web

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"mailout/internal/account"
	"mailout/internal/campaign"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/secret"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

const (
	adminEmail    = "admin@example.org"
	adminPassword = "correct horse battery"
	testMessage   = "From: Shop <news@example.com>\nSubject: Hello {{.first_name}}\n\nDear {{.first_name}},\nyour address is {{.email}}.\n"
	testHTML      = "<html><body><h1>Hello {{.first_name}}</h1><script>alert(1)</script></body></html>\n"
)

// app is a web app over a new SQLite database, served on loopback.
type app struct {
	t      *testing.T
	srv    *httptest.Server
	svc    *campaign.Service
	runner *Runner
	acc    *account.Service
	key    *secret.Key
	client *http.Client
	dbPath string
}

type appOptions struct {
	tls    bool
	doctor func(*Config)
	// maxFails is the sign-in limit (failures per address); 0 = 5.
	maxFails int
}

func newApp(t *testing.T, o ...appOptions) *app {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "mailout.db")
	svc, err := campaign.Open(ctx, dbPath, true, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runner := NewRunner(ctx, svc, nil)
	var opt appOptions
	if len(o) > 0 {
		opt = o[0]
	}
	// The accounts service over the test database, with cheap hashes.
	acc := account.New(svc.Store(), account.Options{Hash: account.HashParams{Memory: 1024, Time: 1, Threads: 1}, MaxFailures: opt.maxFails})
	key, err := secret.NewKey(secret.Generate())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Campaigns: svc, Accounts: acc, Runner: runner, SecretKey: key, Tokens: acc,
		AccountErrors: AccountErrors{RateLimited: account.ErrRateLimited, AdminExists: account.ErrAdminExists},
		TokenErrors:   TokenErrors{BadName: account.ErrBadTokenName, NoToken: account.ErrNoToken}}
	if opt.doctor != nil {
		opt.doctor(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{t: t, svc: svc, runner: runner, acc: acc, key: key, dbPath: dbPath}
	if opt.tls {
		a.srv = httptest.NewTLSServer(h)
	} else {
		a.srv = httptest.NewServer(h)
	}
	jar, _ := cookiejar.New(nil)
	a.client = a.srv.Client()
	a.client.Jar = jar
	a.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t.Cleanup(func() {
		a.srv.Close()
		_ = runner.Shutdown(context.Background())
		svc.Close()
	})
	return a
}

// signIn creates the admin and signs the app's client in.
func (a *app) signIn() {
	a.t.Helper()
	if _, err := a.acc.CreateAdmin(context.Background(), adminEmail, adminPassword); err != nil {
		a.t.Fatal(err)
	}
	res := a.post("/login", url.Values{"email": {adminEmail}, "password": {adminPassword}}, nil)
	if res.StatusCode != http.StatusSeeOther {
		a.t.Fatalf("sign-in: %s", res.Status)
	}
}

// do sends a request with extra headers and returns the response with
// its body read.
func (a *app) do(method, path string, body io.Reader, h http.Header) (*http.Response, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return res, string(b)
}

func (a *app) get(path string) (*http.Response, string) {
	a.t.Helper()
	return a.do(http.MethodGet, path, nil, nil)
}

func (a *app) post(path string, form url.Values, h http.Header) *http.Response {
	a.t.Helper()
	res, _ := a.do(http.MethodPost, path, strings.NewReader(form.Encode()), h)
	return res
}

// newCampaign creates a campaign of list (CSV) on the route of rc through
// the campaign service, as the command line's send does.
func (a *app) newCampaign(name string, rc campaign.RouteConfig, list string, html bool) *store.Campaign {
	a.t.Helper()
	ctx := context.Background()
	rt, err := rc.Check(route.Sandbox, campaign.Env{})
	if err != nil {
		a.t.Fatal(err)
	}
	msg := &store.Message{Template: []byte(testMessage), TemplateName: "message.txt"}
	if html {
		msg.HTML, msg.HTMLName = []byte(testHTML), "message.html"
	}
	draft, err := campaign.NewCampaign{Name: name, Routing: rt, MaxAge: 3600e9, RetryMin: 60e9, Message: msg,
		Profile: throttle.Profile{Name: "test", Connections: 1, Rate: 1000}}.Check(campaign.Env{})
	if err != nil {
		a.t.Fatal(err)
	}
	c, n, err := a.svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader(list), recipient.Options{}, nil), nil)
	if err != nil || n == 0 {
		a.t.Fatalf("Create: %d imported, %v", n, err)
	}
	return c
}

func (a *app) campaign(id int64) *store.Campaign {
	a.t.Helper()
	c, err := a.svc.Store().Campaign(context.Background(), id)
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

const fiveRecipients = "email,first_name\na@example.org,A\nb@example.org,B\nc@example.org,C\nd@example.org,D\ne@example.org,E\n"

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

// readEvents reads server-sent events until an "end" event or EOF.
func readEvents(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	var ev sseEvent
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		case line == "":
			if ev.name != "" {
				out = append(out, ev)
				if ev.name == "end" {
					return out
				}
			}
			ev = sseEvent{}
		}
	}
	return out
}
