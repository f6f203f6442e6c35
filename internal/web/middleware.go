package web

import (
	"context"
	"net/http"
)

// CSP is the Content-Security-Policy of every response but the inbox's
// message bodies (inboxBodyCSP): no inline script or style, nothing from
// another origin, no framing of the app.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

// secure sets the security headers of every response and refuses a
// state-changing request from another site (Sec-Fetch-Site, else Origin
// against Host): the app's defence against cross-site request forgery,
// with the SameSite=Lax session cookie. The exceptions are the
// one-click unsubscribe POST (unsubscribe.go) and the JSON endpoint of
// the subscription forms (optin.go).
func (s *server) secure(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	// Mailbox providers POST one-click unsubscribes from their own sites
	// (RFC 8058 §3.2); the signed token in the path is the authority.
	cop.AddInsecureBypassPattern(unsubscribePostPattern)
	// A website's own subscription form posts from its own origin; the
	// endpoint only sends a confirmation message, under limits.
	cop.AddInsecureBypassPattern(optinJSONPattern)
	guarded := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		guarded.ServeHTTP(w, r)
	})
}

type ctxKey int

const (
	langKey ctxKey = iota
	userKey
)

// language picks the request's language (the lang cookie, else
// Accept-Language) for the handlers.
func (s *server) language(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lang := pickLang(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), langKey, lang)))
	})
}

func langOf(r *http.Request) string {
	if l, ok := r.Context().Value(langKey).(string); ok {
		return l
	}
	return "en"
}

// requireSession lets a request through only with a valid session
// cookie; others go to the sign-in page (or the first-run set-up while
// there is no user), or get 401 when they are not a page load.
func (s *server) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
			if u, err := s.cfg.Accounts.Session(r.Context(), c.Value); err == nil && u != nil {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, u)))
				return
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.render(w, r, http.StatusUnauthorized, "error", "error.unauthorized", nil, "error.unauthorized")
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
}
