package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/csvsafe"
	"mailout/internal/optin"
	"mailout/internal/route"
	"mailout/internal/store"
)

// Double opt-in (internal/optin): a list's public subscription form at
// /s/{form}, its JSON endpoint at /s/{form}/json for a website's own form,
// and the confirmation links /c/{token}. None needs a session. A GET of a
// confirmation link only shows a button (mail scanners follow links); the
// POST confirms.

// optinJSONPattern is the second route the cross-origin protection lets
// through (secure): a website's own form posts to it from its own origin.
// It only ever sends a confirmation message, under the same limits as the
// form.
const optinJSONPattern = "POST /s/{form}/json"

// maxSubscribeBody caps what a subscription POST reads.
const maxSubscribeBody = 8 << 10

// honeypotField is the form's hidden field: people never see it, bots
// fill it.
const honeypotField = "website"

type subscribeView struct {
	// State: "form", "sent" (check your inbox), "invalid" (no such form),
	// "limited" (too many requests).
	State    string
	List     string
	Action   string
	Email    string
	Honeypot string
	// Retry is the wait of a limited request, in minutes.
	Retry int
}

type confirmView struct {
	// State: "confirm" (the button), "done" or "invalid".
	State string
	List  string
	Email string
}

// optinService is the double opt-in service over this app's stores, the
// form's routes coming from the stored settings.
func (s *server) optinService() *optin.Service {
	s.optinOnce.Do(func() {
		s.optin = optin.New(s.cfg.Campaigns, s.cfg.Audience, optin.Options{Now: s.cfg.Now, Logger: s.log,
			Route: func(ctx context.Context, kind string, relays []string) (campaign.RouteConfig, campaign.Env, error) {
				st, err := s.appSettings(ctx)
				if err != nil {
					return campaign.RouteConfig{}, campaign.Env{}, err
				}
				return st.Route(kind, relays)
			}})
	})
	return s.optin
}

// clientIP is the address the request came from. A proxy in front of
// serve makes every request come from the proxy: the limits per client
// then apply to all clients together.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// subscribePage answers GET /s/{form}: the form.
func (s *server) subscribePage(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	l, _, err := s.optinService().Lookup(r.Context(), r.PathValue("form"))
	if err != nil {
		s.subscribeFail(w, r, err, nil)
		return
	}
	s.render(w, r, http.StatusOK, "subscribe", "subscribe.title", &subscribeView{State: "form", List: l.Name, Action: r.URL.Path}, "")
}

// readSubscribe reads a subscription POST: a form (urlencoded or
// multipart) or, for the JSON endpoint, a JSON object {"email": …}.
func readSubscribe(w http.ResponseWriter, r *http.Request) (email, honeypot string, err error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxSubscribeBody)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		var v map[string]any
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			return "", "", err
		}
		email, _ = v["email"].(string)
		honeypot, _ = v[honeypotField].(string)
		return email, honeypot, nil
	case "multipart/form-data":
		err = r.ParseMultipartForm(maxSubscribeBody)
	default:
		err = r.ParseForm()
	}
	return r.PostForm.Get("email"), r.PostForm.Get(honeypotField), err
}

// subscribeRequest makes the service's request of r.
func (s *server) subscribeRequest(r *http.Request, email, honeypot, source string) optin.Request {
	base := s.oneClick(r.Context()).PublicURL
	return optin.Request{Slug: r.PathValue("form"), Email: email, Honeypot: honeypot, IP: clientIP(r),
		Source: source + " " + base + r.URL.Path, PublicURL: base}
}

// subscribe answers POST /s/{form}: the same "check your inbox" page for
// every accepted request, whether or not a message was sent.
func (s *server) subscribe(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	email, honeypot, err := readSubscribe(w, r)
	v := &subscribeView{State: "form", Action: r.URL.Path, Email: email, Honeypot: honeypot}
	if err != nil {
		s.render(w, r, http.StatusBadRequest, "subscribe", "subscribe.title", v, "subscribe.badaddress")
		return
	}
	err = s.optinService().Subscribe(r.Context(), s.subscribeRequest(r, email, honeypot, store.ConsentForm))
	if err != nil {
		if l, _, lerr := s.optinService().Lookup(r.Context(), r.PathValue("form")); lerr == nil {
			v.List = l.Name
		}
		s.subscribeFail(w, r, err, v)
		return
	}
	s.render(w, r, http.StatusOK, "subscribe", "subscribe.sent_title", &subscribeView{State: "sent"}, "")
}

// subscribeFail maps the service's errors to a page.
// A refused address shows form again (when there is one).
func (s *server) subscribeFail(w http.ResponseWriter, r *http.Request, err error, form *subscribeView) {
	var (
		rl *optin.RateLimitError
		ie *optin.InvalidError
	)
	switch {
	case errors.Is(err, optin.ErrNoForm):
		s.render(w, r, http.StatusNotFound, "subscribe", "subscribe.invalid_title", &subscribeView{State: "invalid"}, "")
	case errors.As(err, &rl):
		retry := retryAfter(w, rl.RetryAfter)
		s.render(w, r, http.StatusTooManyRequests, "subscribe", "subscribe.limited_title",
			&subscribeView{State: "limited", Retry: (retry + 59) / 60}, "")
	case errors.As(err, &ie) && form != nil:
		s.render(w, r, http.StatusUnprocessableEntity, "subscribe", "subscribe.title", form, "subscribe.badaddress")
	default:
		s.log.Error("opt-in: subscription failed", "err", err)
		s.render(w, r, http.StatusServiceUnavailable, "error", "error.internal", nil, "subscribe.unavailable")
	}
}

// retryAfter sets Retry-After (RFC 9110 §10.2.3: delay-seconds) and
// returns the seconds.
func retryAfter(w http.ResponseWriter, d time.Duration) int {
	sec := max(1, int((d+time.Second-1)/time.Second))
	w.Header().Set("Retry-After", strconv.Itoa(sec))
	return sec
}

// subscribeJSON answers POST /s/{form}/json, for a website's own form: a
// form post or fetch() with a urlencoded, multipart or JSON body. The
// answer is JSON, readable from any origin (CORS), and 202 for every
// accepted request.
func (s *server) subscribeJSON(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	corsHeaders(w)
	email, honeypot, err := readSubscribe(w, r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad_request"})
		return
	}
	err = s.optinService().Subscribe(r.Context(), s.subscribeRequest(r, email, honeypot, store.ConsentJSON))
	var (
		rl *optin.RateLimitError
		ie *optin.InvalidError
	)
	switch {
	case err == nil:
		writeJSON(w, http.StatusAccepted, map[string]any{"status": "pending",
			"message": catalogues[langOf(r)].text("subscribe.sent_text")})
	case errors.Is(err, optin.ErrNoForm):
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not_found"})
	case errors.As(err, &rl):
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "rate_limited", "retry_after": retryAfter(w, rl.RetryAfter)})
	case errors.As(err, &ie):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": "invalid_email", "reason": ie.Reason})
	default:
		s.log.Error("opt-in: subscription failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "unavailable"})
	}
}

// subscribePreflight answers the CORS preflight of a fetch() with a JSON
// body (a urlencoded one needs none).
func (s *server) subscribePreflight(w http.ResponseWriter, _ *http.Request) {
	corsHeaders(w)
	w.Header().Set("Access-Control-Allow-Methods", "POST")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
	w.Header().Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// corsHeaders let any website read the answer; no credentials are sent
// or honoured.
func corsHeaders(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// confirmPage answers GET /c/{token}: the button; nothing changes.
func (s *server) confirmPage(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	p, l, err := s.optinService().Pending(r.Context(), r.PathValue("token"))
	if err != nil {
		s.confirmFail(w, r, err)
		return
	}
	v := &confirmView{State: "confirm", List: l.Name, Email: p.Email}
	if !p.ConfirmedAt.IsZero() {
		v.State = "done"
		s.render(w, r, http.StatusOK, "confirm", "confirm.done_title", v, "")
		return
	}
	s.render(w, r, http.StatusOK, "confirm", "confirm.title", v, "")
}

// confirm answers POST /c/{token}: the address joins the list, once
// however often it is posted.
func (s *server) confirm(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	p, l, err := s.optinService().Confirm(r.Context(), r.PathValue("token"))
	if err != nil {
		s.confirmFail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "confirm", "confirm.done_title", &confirmView{State: "done", List: l.Name, Email: p.Email}, "")
}

func (s *server) confirmFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, optin.ErrBadToken) {
		s.render(w, r, http.StatusNotFound, "confirm", "confirm.invalid_title", &confirmView{State: "invalid"}, "")
		return
	}
	s.fail(w, r, err)
}

// listFormView is the list page's "public subscription form" section.
type listFormView struct {
	Form *optin.Form
	// URL is the form's public address ("" before the first save or
	// without a public URL); Path its path on this server.
	URL, Path string
	// Relays are the relay accounts of the settings.
	Relays []string
	// NoPublicURL: the app has no public address for the links.
	NoPublicURL bool
	Error       string // a FormError's field
	Pending     []pendingView
}

type pendingView struct {
	ID               int64
	Email            string
	Asked, Confirmed time.Time
	HasMessage       bool
}

// listForm fills the form section of a list's page.
func (s *server) listForm(ctx context.Context, r *http.Request, l *store.List, f *optin.Form) (*listFormView, error) {
	svc := s.optinService()
	if f == nil {
		var err error
		if f, err = svc.Form(ctx, l.ID, langOf(r)); err != nil {
			return nil, err
		}
	}
	v := &listFormView{Form: f}
	base := s.oneClick(ctx).PublicURL
	v.NoPublicURL = base == ""
	if f.Token != "" {
		v.Path = "/s/" + optin.Slug(l.ID, f)
		if base != "" {
			v.URL = base + v.Path
		}
	}
	if st, err := s.appSettings(ctx); err == nil {
		for _, ra := range st.Relays {
			v.Relays = append(v.Relays, ra.Name)
		}
	}
	err := s.cfg.Campaigns.Store().PendingSubscriptions(ctx, l.ID, 20, func(p *store.PendingSubscription) error {
		v.Pending = append(v.Pending, pendingView{ID: p.ID, Email: p.Email, Asked: p.CreatedAt, Confirmed: p.ConfirmedAt, HasMessage: len(p.Message) > 0})
		return nil
	})
	return v, err
}

// saveListForm answers POST /lists/{id}/form.
func (s *server) saveListForm(w http.ResponseWriter, r *http.Request) {
	l := s.loadList(w, r)
	if l == nil {
		return
	}
	ctx := r.Context()
	f, err := s.optinService().Form(ctx, l.ID, langOf(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f.Enabled = r.PostFormValue("enabled") == "on"
	f.From, f.Subject = r.PostFormValue("from"), r.PostFormValue("subject")
	f.Body = strings.ReplaceAll(r.PostFormValue("body"), "\r\n", "\n")
	f.Route, f.Relays = string(route.Sandbox), nil
	if rt := r.PostFormValue("route"); rt != string(route.Sandbox) && rt != "" {
		f.Route, f.Relays = string(route.Relay), []string{rt}
	}
	err = s.optinService().SaveForm(ctx, l.ID, f)
	var fe *optin.FormError
	if errors.As(err, &fe) {
		fv, ferr := s.listForm(ctx, r, l, f)
		if ferr != nil {
			s.fail(w, r, ferr)
			return
		}
		fv.Error = fe.Field
		s.renderList(w, r, http.StatusUnprocessableEntity, l, &listView{OptIn: fv}, "optin.err."+fe.Field)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, listURL(l.ID)+"?done=formsaved#optin", http.StatusSeeOther)
}

type pendingMessageView struct {
	List    *store.List
	Email   string
	Message string
}

// pendingMessage answers GET /lists/{id}/pending/{p}: a confirmation
// message kept by the sandbox route.
func (s *server) pendingMessage(w http.ResponseWriter, r *http.Request) {
	l := s.loadList(w, r)
	if l == nil {
		return
	}
	id, ok := idParam(r, "p")
	if !ok {
		s.notFound(w, r)
		return
	}
	p, err := s.cfg.Campaigns.Store().PendingSubscription(r.Context(), id)
	if err != nil || p.ListID != l.ID || len(p.Message) == 0 {
		s.notFound(w, r)
		return
	}
	s.render(w, r, http.StatusOK, "pending", "pending.title", &pendingMessageView{List: l, Email: p.Email, Message: string(p.Message)}, "")
}

// consents reads the list's consent log (of key, or all): the entries of
// the list and those of every list about its subscribers.
func (s *server) consents(ctx context.Context, l *store.List, key string) ([]store.Consent, error) {
	var out []store.Consent
	err := s.cfg.Campaigns.Store().Consents(ctx, l.ID, key, func(c *store.Consent) error {
		out = append(out, *c)
		return nil
	})
	return out, err
}

// exportConsents answers GET /lists/{id}/consents.csv: the consent
// evidence of the list, one row per entry.
func (s *server) exportConsents(w http.ResponseWriter, r *http.Request) {
	l := s.loadList(w, r)
	if l == nil {
		return
	}
	ctx := r.Context()
	cs, err := s.consents(ctx, l, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Entries of every list (a campaign's unsubscribe link) only for the
	// list's own addresses.
	keys := map[string]bool{}
	for _, c := range cs {
		if c.ListID == l.ID {
			keys[c.Key] = true
		}
	}
	subs, err := s.cfg.Audience.Subscribers(ctx, l.ID, store.SubscriberFilter{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, sub := range subs {
		keys[sub.Key] = true
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": l.Name + "-consents.csv"}))
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"email", "action", "source", "ip", "requested_at", "confirmed_at", "recorded_at", "list"})
	for _, c := range cs {
		if !keys[c.Key] {
			continue
		}
		scope := "this"
		if c.ListID == 0 {
			scope = "all"
		}
		_ = cw.Write([]string{csvsafe.Cell(c.Email), c.Action, csvsafe.Cell(c.Source), c.IP, rfc3339(c.RequestedAt), rfc3339(c.ConfirmedAt), rfc3339(c.At), scope})
	}
	cw.Flush()
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// manualSource is the consent source of a change made by the signed-in
// user.
func manualSource(r *http.Request) string {
	if u := userOf(r); u != nil {
		return store.ConsentManual + " " + u.Email
	}
	return store.ConsentManual
}

// logConsent appends an entry to the consent log; a failure is logged,
// not shown: the change itself was made.
func (s *server) logConsent(ctx context.Context, c store.Consent) {
	if err := s.cfg.Campaigns.Store().AddConsent(ctx, &c); err != nil {
		s.log.Error("consent log", "err", err)
	}
}
