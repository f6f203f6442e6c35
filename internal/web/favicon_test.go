package web

import (
	"net/http"
	"strings"
	"testing"
)

// Every page links the icon, which is served to anyone (the first-run and
// sign-in pages need it too), and /favicon.ico, which some browsers ask
// for whatever the page says, leads to it: no 404 in the browser's log on
// any page.
func TestFaviconIsLinkedAndServed(t *testing.T) {
	a := newApp(t)
	res, page := a.get("/setup") // no session: the first-run page
	if !strings.Contains(page, `<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">`) {
		t.Errorf("the first-run page does not link the icon (%s)", res.Status)
	}
	res, body := a.get("/static/favicon.svg")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(body, "<svg") {
		t.Errorf("/static/favicon.svg: %s, %q", res.Status, res.Header.Get("Content-Type"))
	}
	res, _ = a.get("/favicon.ico")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/static/favicon.svg" {
		t.Errorf("/favicon.ico: %s, Location %q", res.Status, res.Header.Get("Location"))
	}
	a.signIn()
	for _, path := range []string{"/campaigns", "/doctor", "/settings"} {
		if _, page := a.get(path); !strings.Contains(page, `rel="icon"`) {
			t.Errorf("%s does not link the icon", path)
		}
	}
}
