// Package optin is double opt-in subscription to a list: a list's public
// form (and its JSON endpoint for a website's own form) asks for an
// address, a confirmation message goes to that address through the list's
// route with a signed link, and the address joins the list only when the
// link is confirmed.
//
// Place in the flow: serve (internal/web) /s/{form} -> Subscribe -> a
// pending subscription (store) -> campaign.Service.TestSend through the
// list's route -> the subscriber GETs /c/{token} (a page with a button:
// mail scanners follow links) and POSTs it -> Confirm ->
// audience.Service.Add and store.ConfirmPending, which logs the consent.
//
// Abuse: a form cannot be used to mail-bomb a third party. Requests are
// limited per client address (RequestsPerMinute) and confirmation mails
// per target address (MailsPerDay); a bot that fills the honeypot field is
// answered as anyone else and nothing is sent; an address on the
// suppression list is not mailed either, and the answer is the same
// whether or not the address is already subscribed or suppressed, so the
// form tells nothing about who is on the list.
//
// A confirmation token is, base64url without padding: a version byte, the
// pending subscription's id and the token's expiry (Unix seconds) as
// unsigned varints, and 16 bytes of HMAC-SHA256 over all that under the
// database's link key (the unsubscribe key, with a label of its own). It
// carries no address; it cannot be forged, and it expires after
// TokenLife.
package optin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"mailout/internal/addr"
	"mailout/internal/audience"
	"mailout/internal/campaign"
	"mailout/internal/render"
	"mailout/internal/route"
	"mailout/internal/store"
	"mailout/internal/unsubscribe"
)

// Defaults of Options.
const (
	// TokenLife is how long a confirmation link works.
	TokenLife = 7 * 24 * time.Hour
	// DefaultRequestsPerMinute is how many subscription requests one
	// client address may make in a minute.
	DefaultRequestsPerMinute = 10
	// DefaultMailsPerDay is how many confirmation messages one address
	// gets in 24 hours, whatever the list and the client.
	DefaultMailsPerDay = 3
)

// Path is the URL path of the confirmation links, before the token.
const Path = "/c/"

// Errors.
var (
	// ErrNoForm: no list has a public form by that name, or its form is
	// switched off.
	ErrNoForm = errors.New("no such subscription form")
	// ErrBadToken: a confirmation link that was not made here, was
	// altered, has expired or names nothing.
	ErrBadToken = errors.New("not a valid confirmation link")
	// ErrNoPublicURL: the app has no public address to put in the link.
	ErrNoPublicURL = errors.New("the app has no public address for the confirmation link")
)

// RateLimitError is a request over one of the limits; RetryAfter says
// when to try again.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many subscription requests; try again in %s", e.RetryAfter.Round(time.Second))
}

// InvalidError is an address that cannot be subscribed; Reason says why.
type InvalidError struct {
	Reason string
	Err    error
}

func (e *InvalidError) Error() string { return e.Reason }
func (e *InvalidError) Unwrap() error { return e.Err }

// FormError is a form setting that is refused; Field names it.
type FormError struct {
	Field  string // "from", "subject", "body", "route"
	Reason string
}

func (e *FormError) Error() string { return e.Field + ": " + e.Reason }

// SendError is a confirmation message the route did not deliver.
type SendError struct {
	Class string
	Code  int
	Text  string
}

func (e *SendError) Error() string {
	return fmt.Sprintf("optin: the confirmation message was not delivered (%s): %d %s", e.Class, e.Code, e.Text)
}

// Form is a list's public subscription form and its confirmation message.
type Form struct {
	Enabled bool
	// Token is the random part of the form's name (Slug).
	Token string
	// From, Subject and Body are the confirmation message's; Subject and
	// Body are templates with the merge fields {{.confirm_url}},
	// {{.list}} and {{.email}}.
	From, Subject, Body string
	// Route is "sandbox" (nothing leaves the machine; the message is kept
	// for the list's page) or "relay" through the named Relays accounts.
	Route  string
	Relays []string
}

// Slug is the form's name in its URL, /s/{slug}: the list's id and a
// random token, so a list's form cannot be guessed from its id.
func Slug(listID int64, f *Form) string { return strconv.FormatInt(listID, 10) + "-" + f.Token }

// DefaultForm is a list's form before it was saved: off, the sandbox
// route, a message in lang ("en" or "es").
func DefaultForm(lang string) *Form {
	f := &Form{Route: string(route.Sandbox)}
	if lang == "es" {
		f.Subject = "Confirme su suscripción a {{.list}}"
		f.Body = "Hola:\n\nAlguien (esperamos que usted) pidió suscribir {{.email}} a {{.list}}.\n\n" +
			"Para confirmarlo, abra este enlace y pulse «Confirmar»:\n\n{{.confirm_url}}\n\n" +
			"Si no lo pidió, ignore este mensaje: no recibirá nada más.\n"
		return f
	}
	f.Subject = "Please confirm your subscription to {{.list}}"
	f.Body = "Hello,\n\nSomeone (we hope you) asked to subscribe {{.email}} to {{.list}}.\n\n" +
		"To confirm, open this link and press \"Confirm\":\n\n{{.confirm_url}}\n\n" +
		"If you did not ask for it, ignore this message: you will get nothing more.\n"
	return f
}

// RouteFunc gives the campaign service the route of a form: kind
// "sandbox" or "relay" and the relay accounts' names, from the app's
// stored settings (passwords included, never shown).
type RouteFunc func(ctx context.Context, kind string, relays []string) (campaign.RouteConfig, campaign.Env, error)

// Options configure a Service; zero fields take the defaults.
type Options struct {
	// Route resolves a form's route; nil allows the sandbox only.
	Route             RouteFunc
	RequestsPerMinute int
	MailsPerDay       int
	Now               func() time.Time
	Logger            *slog.Logger
}

// Service runs the public forms of the lists.
type Service struct {
	st   store.Store
	camp *campaign.Service
	aud  *audience.Service
	opt  Options

	mu    sync.Mutex
	perIP map[string]*window
}

// window counts one client's requests in the current minute.
type window struct {
	start time.Time
	n     int
}

// New returns the service over the campaign service's store.
func New(camp *campaign.Service, aud *audience.Service, o Options) *Service {
	if o.RequestsPerMinute <= 0 {
		o.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if o.MailsPerDay <= 0 {
		o.MailsPerDay = DefaultMailsPerDay
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{st: camp.Store(), camp: camp, aud: aud, opt: o, perIP: map[string]*window{}}
}

func settingKey(listID int64) string { return "optin.form." + strconv.FormatInt(listID, 10) }

// Form returns the list's form; DefaultForm(lang) when none was saved.
func (s *Service) Form(ctx context.Context, listID int64, lang string) (*Form, error) {
	b, err := s.st.Setting(ctx, settingKey(listID))
	if errors.Is(err, store.ErrNotFound) {
		return DefaultForm(lang), nil
	}
	if err != nil {
		return nil, fmt.Errorf("optin: read the form of list %d: %w", listID, err)
	}
	var f Form
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("optin: read the form of list %d: %w", listID, err)
	}
	return &f, nil
}

// SaveForm checks and stores the list's form; a form switched on needs a
// From address and a body with the {{.confirm_url}} link. The first save
// gives it its random token.
func (s *Service) SaveForm(ctx context.Context, listID int64, f *Form) error {
	if _, err := s.st.List(ctx, listID); err != nil {
		return err
	}
	f.From, f.Subject = strings.TrimSpace(f.From), strings.TrimSpace(f.Subject)
	if f.From != "" {
		if _, err := mail.ParseAddress(f.From); err != nil {
			return &FormError{Field: "from", Reason: err.Error()}
		}
	} else if f.Enabled {
		return &FormError{Field: "from", Reason: "a From address is needed"}
	}
	if f.Enabled && f.Subject == "" {
		return &FormError{Field: "subject", Reason: "a subject is needed"}
	}
	if !strings.Contains(f.Body, "{{.confirm_url}}") {
		return &FormError{Field: "body", Reason: "the body must contain the link {{.confirm_url}}"}
	}
	switch f.Route {
	case string(route.Sandbox):
		f.Relays = nil
	case string(route.Relay):
		if len(f.Relays) == 0 {
			return &FormError{Field: "route", Reason: "choose a relay account"}
		}
	default:
		return &FormError{Field: "route", Reason: "the route must be the sandbox or a relay account"}
	}
	if f.Enabled {
		// The message must render before the form goes public.
		if _, err := s.draft(ctx, f); err != nil {
			return &FormError{Field: "body", Reason: err.Error()}
		}
	}
	if f.Token == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b) // crypto/rand does not fail on supported platforms
		f.Token = base64.RawURLEncoding.EncodeToString(b)
	}
	b, _ := json.Marshal(f)
	if err := s.st.PutSetting(ctx, settingKey(listID), b); err != nil {
		return fmt.Errorf("optin: save the form of list %d: %w", listID, err)
	}
	return nil
}

// Lookup finds the list and the switched-on form of slug; ErrNoForm when
// there is none.
func (s *Service) Lookup(ctx context.Context, slug string) (*store.List, *Form, error) {
	idText, token, ok := strings.Cut(slug, "-")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || id <= 0 || token == "" {
		return nil, nil, ErrNoForm
	}
	l, err := s.st.List(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrNoForm
	}
	if err != nil {
		return nil, nil, err
	}
	f, err := s.Form(ctx, id, "en")
	if err != nil {
		return nil, nil, err
	}
	if !f.Enabled || f.Token == "" || subtle.ConstantTimeCompare([]byte(f.Token), []byte(token)) != 1 {
		return nil, nil, ErrNoForm
	}
	return l, f, nil
}

// Request is one subscription request of a form.
type Request struct {
	Slug  string
	Email string
	// Honeypot is the value of the form's hidden field: people leave it
	// empty, bots fill it.
	Honeypot string
	// Source is store.ConsentForm or store.ConsentJSON and the URL.
	Source string
	// IP is the client's address.
	IP string
	// PublicURL is the base of the confirmation link (as
	// unsubscribe.CheckPublicURL returns it).
	PublicURL string
}

// Subscribe handles a request: over a limit it is a *RateLimitError, an
// address that cannot be used an *InvalidError, an unknown form
// ErrNoForm. Otherwise it returns nil whether or not a message was sent
// (honeypot, suppressed address): the caller gives every such request
// the same answer.
func (s *Service) Subscribe(ctx context.Context, req Request) error {
	l, f, err := s.Lookup(ctx, req.Slug)
	if err != nil {
		return err
	}
	now := s.opt.Now()
	if wait, ok := s.allowIP(req.IP, now); !ok {
		return &RateLimitError{RetryAfter: wait}
	}
	if strings.TrimSpace(req.Honeypot) != "" {
		s.opt.Logger.Info("opt-in: honeypot filled, nothing sent", "list", l.ID, "ip", req.IP)
		return nil
	}
	a, err := addr.Parse(req.Email)
	if err != nil {
		var ae *addr.Error
		if errors.As(err, &ae) {
			return &InvalidError{Reason: ae.Reason, Err: err}
		}
		return &InvalidError{Reason: err.Error(), Err: err}
	}
	if req.PublicURL == "" {
		return ErrNoPublicURL
	}
	n, err := s.st.PendingCount(ctx, a.Key(), now.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	if n >= s.opt.MailsPerDay {
		return &RateLimitError{RetryAfter: 24 * time.Hour}
	}
	suppressed, err := s.st.IsSuppressed(ctx, a.Key())
	if err != nil {
		return err
	}
	if suppressed {
		// Not mailed, and the answer is the same as for anyone.
		s.opt.Logger.Info("opt-in: address suppressed, nothing sent", "list", l.ID)
		return nil
	}
	p := &store.PendingSubscription{ListID: l.ID, Email: a.String(), Domain: a.Domain, Key: a.Key(),
		Fields: map[string]string{}, Source: req.Source, IP: req.IP, CreatedAt: now}
	if err := s.st.CreatePending(ctx, p); err != nil {
		return err
	}
	k, err := unsubscribe.LoadKey(ctx, s.st)
	if err != nil {
		return err
	}
	link := req.PublicURL + Path + token(k, p.ID, now.Add(TokenLife))
	d, err := s.draft(ctx, f)
	if err != nil {
		return err
	}
	res, err := s.camp.TestSend(ctx, d, render.Recipient{Email: p.Email,
		Fields: map[string]string{"confirm_url": link, "list": l.Name}}, p.Email)
	if err != nil {
		return fmt.Errorf("optin: send the confirmation: %w", err)
	}
	if res.Sandbox {
		return s.st.SetPendingMessage(ctx, p.ID, res.Data)
	}
	if !res.IsDelivered() {
		return &SendError{Class: string(res.Class), Code: res.Code, Text: res.Text}
	}
	s.opt.Logger.Info("opt-in: confirmation sent", "list", l.ID, "pending", p.ID)
	return nil
}

// draft is the confirmation message of f through its route.
func (s *Service) draft(ctx context.Context, f *Form) (*campaign.Draft, error) {
	rc, env := campaign.RouteConfig{Route: string(route.Sandbox)}, campaign.Env{}
	if f.Route != string(route.Sandbox) {
		if s.opt.Route == nil {
			return nil, fmt.Errorf("optin: route %q: no relay settings", f.Route)
		}
		var err error
		if rc, env, err = s.opt.Route(ctx, f.Route, f.Relays); err != nil {
			return nil, err
		}
	}
	rt, err := rc.Check(route.Sandbox, env)
	if err != nil {
		return nil, err
	}
	msg := &store.Message{TemplateName: "confirmation.txt",
		Template: []byte("From: " + f.From + "\nSubject: " + f.Subject + "\n\n" + f.Body)}
	return campaign.NewCampaign{Name: "opt-in confirmation", Message: msg, Routing: rt}.Check(env)
}

// clientKey is what the per-client limit counts: the address, or for
// IPv6 its /64, which one host usually has whole.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Unmap().Is4() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// allowIP counts a request of ip; false and the wait when it is over the
// limit of the minute.
func (s *Service) allowIP(ip string, now time.Time) (time.Duration, bool) {
	ip = clientKey(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.perIP) > 4096 {
		for k, w := range s.perIP {
			if now.Sub(w.start) >= time.Minute {
				delete(s.perIP, k)
			}
		}
	}
	w := s.perIP[ip]
	if w == nil || now.Sub(w.start) >= time.Minute {
		w = &window{start: now}
		s.perIP[ip] = w
	}
	if w.n >= s.opt.RequestsPerMinute {
		return w.start.Add(time.Minute).Sub(now), false
	}
	w.n++
	return 0, true
}

const tokenVersion = 1

// token signs a pending subscription's id and the link's expiry.
func token(k *unsubscribe.Key, id int64, expires time.Time) string {
	b := []byte{tokenVersion}
	b = binary.AppendUvarint(b, uint64(id))
	b = binary.AppendUvarint(b, uint64(expires.Unix()))
	b = append(b, k.MAC("optin", b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseToken checks a token and returns the pending subscription's id;
// ErrBadToken when it was not made with k or has expired.
func parseToken(k *unsubscribe.Key, tok string, now time.Time) (int64, error) {
	if len(tok) > 64 {
		return 0, ErrBadToken
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	const macSize = 16
	if err != nil || len(b) < 1+2+macSize || b[0] != tokenVersion {
		return 0, ErrBadToken
	}
	body, sum := b[:len(b)-macSize], b[len(b)-macSize:]
	if !hmac.Equal(sum, k.MAC("optin", body)) {
		return 0, ErrBadToken
	}
	id, n := binary.Uvarint(body[1:])
	if n <= 0 || id == 0 || id > 1<<62 {
		return 0, ErrBadToken
	}
	exp, m := binary.Uvarint(body[1+n:])
	if m <= 0 || 1+n+m != len(body) || exp > 1<<62 {
		return 0, ErrBadToken
	}
	if !now.Before(time.Unix(int64(exp), 0)) {
		return 0, ErrBadToken
	}
	return int64(id), nil
}

// Pending returns the pending subscription and list a confirmation link
// names; ErrBadToken for a link that is not valid (any more).
func (s *Service) Pending(ctx context.Context, tok string) (*store.PendingSubscription, *store.List, error) {
	k, err := unsubscribe.LoadKey(ctx, s.st)
	if err != nil {
		return nil, nil, err
	}
	id, err := parseToken(k, tok, s.opt.Now())
	if err != nil {
		return nil, nil, err
	}
	p, err := s.st.PendingSubscription(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrBadToken
	}
	if err != nil {
		return nil, nil, err
	}
	l, err := s.st.List(ctx, p.ListID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrBadToken // the list was deleted meanwhile
	}
	if err != nil {
		return nil, nil, err
	}
	return p, l, nil
}

// Confirm adds the subscriber a confirmation link names to its list and
// logs the consent; confirming again changes nothing. ErrBadToken for a
// link that is not valid (any more).
func (s *Service) Confirm(ctx context.Context, tok string) (*store.PendingSubscription, *store.List, error) {
	p, l, err := s.Pending(ctx, tok)
	if err != nil {
		return nil, nil, err
	}
	if !p.ConfirmedAt.IsZero() {
		return p, l, nil
	}
	// The subscriber first, then the confirmation: a failure between the
	// two leaves the link to be confirmed again, which adds nothing twice.
	if _, err := s.aud.Add(ctx, l.ID, p.Email, p.Fields, "form"); err != nil {
		return nil, nil, fmt.Errorf("optin: add the subscriber: %w", err)
	}
	if _, err := s.st.ConfirmPending(ctx, p.ID, s.opt.Now()); err != nil {
		return nil, nil, err
	}
	s.opt.Logger.Info("opt-in: subscription confirmed", "list", l.ID, "pending", p.ID)
	return p, l, nil
}
