package web

import (
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"mailout/internal/doctor"
	"mailout/internal/queue"
	"mailout/internal/store"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Both catalogues hold the same keys, and every key the templates and
// the handlers use is in them.
func TestCataloguesAreComplete(t *testing.T) {
	en, es := catalogues["en"], catalogues["es"]
	if k1, k2 := slices.Sorted(maps.Keys(en)), slices.Sorted(maps.Keys(es)); !slices.Equal(k1, k2) {
		for _, k := range k1 {
			if !es.has(k) {
				t.Errorf("es lacks %q", k)
			}
		}
		for _, k := range k2 {
			if !en.has(k) {
				t.Errorf("en lacks %q", k)
			}
		}
	}
	used := map[string]bool{}
	re := regexp.MustCompile(`\.Tf? "([^"]+)"`)
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		b, _ := templateFS.ReadFile(n)
		for _, m := range re.FindAllSubmatch(b, -1) {
			used[string(m[1])] = true
		}
	}
	if len(used) < 50 {
		t.Fatalf("found only %d keys in the templates: the pattern is wrong", len(used))
	}
	// Keys the handlers build.
	for _, s := range []store.CampaignStatus{store.CampaignRunning, store.CampaignPaused, store.CampaignDone, store.CampaignCancelled} {
		used["status."+string(s)] = true
	}
	used["status.interrupted"] = true
	for _, s := range queue.States {
		used["state."+string(s)] = true
	}
	for _, s := range []doctor.Severity{doctor.Pass, doctor.Warn, doctor.Fail, doctor.Skip} {
		used["severity."+string(s)] = true
	}
	for _, k := range []string{"flash.started", "flash.paused", "flash.cancelled", "flash.requeued", "flash.fixed", "error.nofix", "live.update", "live.end",
		"error.notfound", "error.internal", "error.unauthorized", "error.conflict", "error.final", "error.elsewhere",
		"setup.bademail", "setup.shortpassword", "setup.mismatch", "setup.refused", "login.bad", "login.ratelimited",
		"campaign.title", "recipients.title", "inbox.message", "doctor.badroute", "doctor.badaddress"} {
		used[k] = true
	}
	for k := range used {
		for lang, c := range catalogues {
			if !c.has(k) {
				t.Errorf("%s lacks %q, used by the pages", lang, k)
			}
		}
	}
}

// The language follows Accept-Language until the menu sets the lang
// cookie, which wins after.
func TestLanguageFromAcceptLanguageAndCookie(t *testing.T) {
	a := newApp(t)
	if _, err := a.acc.CreateAdmin(t.Context(), adminEmail, adminPassword); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ accept, want, lang string }{
		{"es-AR,es;q=0.9,en;q=0.5", "Iniciar sesión", "es"},
		{"en-GB,en;q=0.9", "Sign in", "en"},
		{"fr-FR, de;q=0.8", "Sign in", "en"},
		{"", "Sign in", "en"},
	} {
		res, body := a.do(http.MethodGet, "/login", nil, http.Header{"Accept-Language": {tc.accept}})
		if res.StatusCode != http.StatusOK || !contains(body, "<h1>"+tc.want+"</h1>") || !contains(body, `<html lang="`+tc.lang+`">`) {
			t.Errorf("Accept-Language %q: page not in %s", tc.accept, tc.lang)
		}
	}
	res := a.post("/lang", url.Values{"lang": {"es"}, "next": {"/login"}}, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("language menu: %s to %q", res.Status, res.Header.Get("Location"))
	}
	_, body := a.do(http.MethodGet, "/login", nil, http.Header{"Accept-Language": {"en"}})
	if !contains(body, "<h1>Iniciar sesión</h1>") {
		t.Error("the lang cookie does not win over Accept-Language")
	}
	// The menu never sends elsewhere.
	for _, next := range []string{"//evil.example/", "https://evil.example/", `/\evil.example`} {
		res := a.post("/lang", url.Values{"lang": {"en"}, "next": {next}}, nil)
		if loc := res.Header.Get("Location"); loc != "/" {
			t.Errorf("next=%q redirects to %q, want /", next, loc)
		}
	}
	if res := a.post("/lang", url.Values{"lang": {"xx"}}, nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown language: %s", res.Status)
	}
}

func contains(s, sub string) bool {
	return len(sub) > 0 && regexp.MustCompile(regexp.QuoteMeta(sub)).MatchString(s)
}
