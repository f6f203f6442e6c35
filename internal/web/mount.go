package web

import (
	"net/http"
	"strings"
)

// metricsGuard serves /metrics only to a signed-in user or to a request
// that carries a valid API token (Authorization: Bearer, as a Prometheus
// scrape job is configured): the queue sizes and send rates are not for
// anyone who can reach the port. Others get 401.
func (s *server) metricsGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.bearerOK(r) || s.sessionOK(r) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="mailout"`)
		http.Error(w, "sign in, or send an API token as Authorization: Bearer", http.StatusUnauthorized)
	})
}

// bearerOK reports whether the request carries a valid API token
// (RFC 6750 §2.1: the Authorization request header, scheme "Bearer").
func (s *server) bearerOK(r *http.Request) bool {
	if s.cfg.Tokens == nil {
		return false
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return false
	}
	t, err := s.cfg.Tokens.CheckToken(r.Context(), strings.TrimSpace(tok))
	return err == nil && t != nil
}

// sessionOK reports whether the request's session cookie is valid.
func (s *server) sessionOK(r *http.Request) bool {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return false
	}
	u, err := s.cfg.Accounts.Session(r.Context(), c.Value)
	return err == nil && u != nil
}
