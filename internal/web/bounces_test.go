package web

import (
	"html"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const boxPassword = "Box-Pa55-in-settings"

// The settings page's bounce mailbox: a refused URL is named next to its
// field; a saved one keeps its password out of the page; "Fetch now" reads
// it and shows the result (here a server that refuses the connection),
// without the password.
func TestSettingsBounceMailboxAndFetchNow(t *testing.T) {
	a := newApp(t)
	a.signIn()
	res, page := a.do(http.MethodPost, "/settings/bounces", strings.NewReader(url.Values{"url": {"imaps://u:pw@mail.example.com"}, "password": {boxPassword}}.Encode()), nil)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, `<span class="field-error">mailbox URL`) {
		t.Fatalf("a password in the URL: %s, want 422 and the reason next to the field", res.Status)
	}
	// A loopback port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res = a.post("/settings/bounces", url.Values{"url": {"imap+insecure://bounces@" + addr}, "password": {boxPassword}, "interval": {"10"}}, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %s", res.Status)
	}
	_, page = a.get("/settings")
	page = html.UnescapeString(page)
	if !strings.Contains(page, "imap+insecure://bounces@"+addr) || !strings.Contains(page, "Stored. Leave empty to keep it.") ||
		!strings.Contains(page, "Not read yet.") || strings.Contains(page, boxPassword) {
		t.Fatalf("settings page after the save:\n%s", page)
	}
	res = a.post("/settings/bounces/fetch", url.Values{}, nil)
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "done=fetched") {
		t.Fatalf("fetch now: %s %s", res.Status, res.Header.Get("Location"))
	}
	_, page = a.get("/settings?done=fetched")
	if !strings.Contains(page, "The bounce mailbox was read.") || !strings.Contains(page, "Last read") || !strings.Contains(page, "failed:") {
		t.Fatalf("settings page after fetch now:\n%s", page)
	}
	if strings.Contains(page, boxPassword) {
		t.Fatal("the page shows the mailbox password")
	}
	// An empty URL removes the mailbox.
	if res := a.post("/settings/bounces", url.Values{"url": {""}}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %s", res.Status)
	}
	if res := a.post("/settings/bounces/fetch", url.Values{}, nil); !strings.Contains(res.Header.Get("Location"), "done=nomailbox") {
		t.Fatalf("fetch without a mailbox: %s", res.Header.Get("Location"))
	}
}
