package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailout/internal/api"
	"mailout/internal/campaign"
	"mailout/internal/store"
)

// testToken is the plaintext of the one valid token of the tests.
const testToken = "mo_test_0123456789abcdef"

// memTokens is an in-memory token checker: one valid token.
type memTokens struct{}

var errNoToken = errors.New("no such token")

func (memTokens) CheckToken(_ context.Context, plaintext string) (*store.APIToken, error) {
	if plaintext != testToken {
		return nil, errNoToken
	}
	return &store.APIToken{ID: 1, Name: "test"}, nil
}

// env is an API over a new SQLite database, served over loopback.
type env struct {
	t   *testing.T
	srv *httptest.Server
	svc *campaign.Service
	db  string // the database's path
}

// newEnv starts the API over a database in t.TempDir; cfg may set Lists
// and Limits. At cleanup the runs are interrupted and awaited before the
// database closes.
func newEnv(t *testing.T, cfg api.Config) *env {
	t.Helper()
	db := filepath.Join(t.TempDir(), "mailout.db")
	svc, err := campaign.Open(context.Background(), db, true, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runs sync.WaitGroup
	cfg.Campaigns, cfg.Tokens, cfg.Context, cfg.Runs = svc, memTokens{}, ctx, &runs
	srv := httptest.NewServer(api.New(cfg))
	// Every answer is checked against api/openapi.yaml.
	_, router := spec(t)
	srv.Client().Transport = &specCheck{t: t, router: router}
	t.Cleanup(func() {
		srv.Close()
		cancel()
		runs.Wait()
		svc.Close()
	})
	return &env{t: t, srv: srv, svc: svc, db: db}
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
	return e.send(method, path, body, "application/json", "Bearer "+testToken)
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
