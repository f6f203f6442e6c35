package web

import (
	"embed"
	"encoding/json"
	"net/http"
	"strings"

	"golang.org/x/text/language"
)

// The message catalogues, one JSON object of key -> text per language.
// Every visible string of the pages is a key here; a test checks that both
// catalogues hold the same keys and every key the templates use.
//
//go:embed i18n/*.json
var i18nFS embed.FS

// languages the app speaks, the first the default.
var languages = []string{"en", "es"}

var matcher = language.NewMatcher([]language.Tag{language.English, language.Spanish})

type catalogue map[string]string

// text is the message of key; a missing key shows itself, which the
// catalogue test prevents.
func (c catalogue) text(key string) string {
	if s, ok := c[key]; ok {
		return s
	}
	return key
}

func (c catalogue) has(key string) bool {
	_, ok := c[key]
	return ok
}

var catalogues = mustLoadCatalogues()

func mustLoadCatalogues() map[string]catalogue {
	out := map[string]catalogue{}
	for _, l := range languages {
		b, err := i18nFS.ReadFile("i18n/" + l + ".json")
		if err != nil {
			panic(err)
		}
		var c catalogue
		if err := json.Unmarshal(b, &c); err != nil {
			panic("i18n/" + l + ".json: " + err.Error())
		}
		out[l] = c
	}
	return out
}

// langCookie remembers the language chosen in the menu.
const langCookie = "lang"

// pickLang is the lang cookie's language when it is one the app speaks,
// else the best match of Accept-Language, else English.
func pickLang(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && catalogues[c.Value] != nil {
		return c.Value
	}
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return "en"
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return "en"
	}
	return languages[i]
}

// setLang stores the language chosen in the menu and goes back to the
// page it was chosen on.
func (s *server) setLang(w http.ResponseWriter, r *http.Request) {
	lang := r.PostFormValue("lang")
	if catalogues[lang] == nil {
		http.Error(w, "unknown language", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

// localPath is p when it is a path of this site, else "/": a redirect
// never leaves the app.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}
