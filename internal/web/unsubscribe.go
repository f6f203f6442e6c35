package web

import (
	"errors"
	"mime"
	"net/http"

	"mailout/internal/store"
	"mailout/internal/unsubscribe"
)

// One-click unsubscribe (RFC 8058): the links of the campaigns'
// List-Unsubscribe headers and {{unsubscribe_url}}, open to anyone who
// holds one — no session, no CSRF token. A mailbox provider POSTs
// "List-Unsubscribe=One-Click" from its own servers; a person's browser
// GETs the link and confirms with the page's button. A GET never
// unsubscribes: mail scanners follow links.

// unsubscribePostPattern is the one route the cross-origin protection
// lets through (secure): a provider's POST comes from another site, or
// from no site at all, and the token is its authority.
const unsubscribePostPattern = "POST /u/{token}"

// maxUnsubscribeBody caps what the POST reads: the body is one short
// field.
const maxUnsubscribeBody = 4 << 10

type unsubscribeView struct {
	// State: "confirm" (the button), "done" or "invalid".
	State   string
	Confirm string // the confirmation form field
}

// unsubscribePage answers GET /u/{token}: the confirmation page, in the
// subscriber's language; nothing changes.
func (s *server) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	noStore(w)
	k, err := s.cfg.Campaigns.UnsubscribeKey(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.cfg.Campaigns.UnsubscribeTarget(r.Context(), token); err != nil {
		s.unsubscribeFail(w, r, err)
		return
	}
	v := &unsubscribeView{State: "confirm", Confirm: k.Confirm(token, s.cfg.Now())}
	s.render(w, r, http.StatusOK, "unsubscribe", "unsubscribe.title", v, "")
}

// unsubscribe answers POST /u/{token} with the body
// List-Unsubscribe=One-Click (RFC 8058 §3.2), or the confirmation page's
// form field: the address goes on the suppression list, once however
// often it is posted, and the answer is 200.
func (s *server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	noStore(w)
	r.Body = http.MaxBytesReader(w, r.Body, maxUnsubscribeBody)
	// RFC 8058 §3.2: the body is multipart/form-data or
	// application/x-www-form-urlencoded.
	var err error
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		err = r.ParseMultipartForm(maxUnsubscribeBody)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		s.render(w, r, http.StatusBadRequest, "unsubscribe", "unsubscribe.invalid_title", &unsubscribeView{State: "invalid"}, "")
		return
	}
	k, err := s.cfg.Campaigns.UnsubscribeKey(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, _, err := k.Parse(token); err != nil {
		s.unsubscribeFail(w, r, err)
		return
	}
	now := s.cfg.Now()
	oneClick := r.PostForm.Get("List-Unsubscribe") == "One-Click"
	if !oneClick && !k.CheckConfirm(token, r.PostForm.Get("confirm"), now) {
		// Neither a provider's one-click POST nor the page's button (or
		// the page is older than a day): ask again.
		v := &unsubscribeView{State: "confirm", Confirm: k.Confirm(token, now)}
		s.render(w, r, http.StatusBadRequest, "unsubscribe", "unsubscribe.title", v, "")
		return
	}
	t, err := s.cfg.Campaigns.Unsubscribe(r.Context(), token, now)
	if err != nil {
		s.unsubscribeFail(w, r, err)
		return
	}
	s.log.Info("unsubscribed", "campaign", t.Campaign.Name, "delivery", t.Delivery.ID, "one_click", oneClick)
	// The consent log: a campaign names no list, so the entry is about
	// every list.
	s.logConsent(r.Context(), store.Consent{Email: t.Delivery.Email, Key: t.Delivery.Key, Action: store.ConsentUnsubscribe,
		Source: store.ConsentOneClick + " " + t.Campaign.Name, IP: clientIP(r), At: now})
	s.render(w, r, http.StatusOK, "unsubscribe", "unsubscribe.done_title", &unsubscribeView{State: "done"}, "")
}

// unsubscribeFail: a token that is not one of ours is 404, with a page a
// subscriber understands; anything else is the store's fault.
func (s *server) unsubscribeFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, unsubscribe.ErrBadToken) {
		s.render(w, r, http.StatusNotFound, "unsubscribe", "unsubscribe.invalid_title", &unsubscribeView{State: "invalid"}, "")
		return
	}
	s.fail(w, r, err)
}

// noStore keeps the pages of a link out of caches and search engines.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Robots-Tag", "noindex")
}
