package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailout/internal/account"
	"mailout/internal/api"
	"mailout/internal/audience"
	"mailout/internal/campaign"
)

// env is an API over a new SQLite database, served over loopback, with
// the real services over that database: campaigns, lists, and accounts
// (a token created as mailout token create creates it).
type env struct {
	t     *testing.T
	srv   *httptest.Server
	svc   *campaign.Service
	db    string // the database's path
	cfg   api.Config
	token string // the plaintext of a valid API token
}

// newEnv starts the API over a database in t.TempDir; cfg may set
// Limits. At cleanup the runs are interrupted and awaited before the
// database closes.
func newEnv(t *testing.T, cfg api.Config) *env {
	t.Helper()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "mailout.db")
	svc, err := campaign.Open(ctx, db, true, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	accounts := account.New(svc.Store(), account.Options{})
	token, err := accounts.CreateToken(ctx, "tests")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var runs sync.WaitGroup
	cfg.Campaigns, cfg.Lists, cfg.Tokens, cfg.Context, cfg.Runs = svc, audience.New(svc.Store()), accounts, runCtx, &runs
	e := &env{t: t, svc: svc, db: db, token: token}
	e.serve(cfg)
	t.Cleanup(func() {
		e.srv.Close()
		cancel()
		runs.Wait()
		svc.Close()
	})
	return e
}

// serve starts a server of the API with cfg; every answer it gives is
// checked against api/openapi.yaml.
func (e *env) serve(cfg api.Config) {
	e.cfg = cfg
	e.srv = httptest.NewServer(api.New(cfg))
	_, router := spec(e.t)
	e.srv.Client().Transport = &specCheck{t: e.t, router: router}
}

// restart is another API handler over the same services and database, as
// a new process would have: nothing kept in the first one's memory.
// change edits its configuration.
func (e *env) restart(change func(*api.Config)) *env {
	e.t.Helper()
	cfg := e.cfg
	if change != nil {
		change(&cfg)
	}
	again := *e
	again.serve(cfg)
	e.t.Cleanup(again.srv.Close)
	return &again
}

// reply is an answer: its status, headers and JSON body.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// into decodes the body into v.
func (r *reply) into(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, r.body)
	}
}

// apiError is the error body every failure carries.
type apiError struct {
	Error struct {
		Code     string `json:"code"`
		Message  string `json:"message"`
		Field    string `json:"field"`
		Rejected []struct {
			Line   int    `json:"line"`
			Reason string `json:"reason"`
		} `json:"rejected"`
	} `json:"error"`
}

// wantError checks the status and the stable code of a failure.
func (r *reply) wantError(t *testing.T, status int, code string) apiError {
	t.Helper()
	var e apiError
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	r.into(t, &e)
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error %+v, want code %q and a message", e.Error, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	return e
}

// do sends a request with the valid token; body is JSON-encoded unless it
// is a string (sent as is, with contentType).
func (e *env) do(method, path string, body any) *reply {
	e.t.Helper()
	return e.send(method, path, body, "application/json", "Bearer "+e.token)
}

func (e *env) send(method, path string, body any, contentType, authorization string) *reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// until polls GET path until cond holds for the campaign, or fails after
// a generous deadline (the condition is awaited, not slept for).
func (e *env) until(path string, cond func(*api.Campaign) bool) *api.Campaign {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var c api.Campaign
		r := e.do("GET", path, nil)
		if r.status != http.StatusOK {
			e.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		r.into(e.t, &c)
		if cond(&c) {
			return &c
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("GET %s: condition not met before the deadline; last: %s", path, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const testMessage = "From: Shop <news@example.com>\nSubject: Hello {{.first_name}}\n\nDear {{.first_name}},\nyour address is {{.email}}.\n"
