package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/setting"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// NewCampaign is the body of POST /api/v1/campaigns.
type NewCampaign struct {
	Name string `json:"name"`
	// ListID takes the recipients from a stored list; RecipientsCSV
	// gives them as CSV text (header row with an "email" column). One of
	// the two.
	ListID        int64  `json:"list_id,omitempty"`
	RecipientsCSV string `json:"recipients_csv,omitempty"`
	// Message is the template in RFC 5322 form (headers, blank line,
	// text body), as the command line reads it; HTML the optional HTML
	// body template.
	Message string   `json:"message"`
	HTML    string   `json:"html,omitempty"`
	Route   RouteReq `json:"route"`
	Profile *Profile `json:"profile,omitempty"`
	// MaxAge and RetryMin are Go durations ("72h", "5m"); default as the
	// command line.
	MaxAge   string `json:"max_age,omitempty"`
	RetryMin string `json:"retry_min,omitempty"`
}

// RouteReq is the way a campaign's messages leave.
type RouteReq struct {
	Kind string `json:"kind"` // sandbox, relay or direct
	// Relay: the relay account given in full, or Account, the name of a
	// stored relay account (the app's settings).
	Relay   *RelayReq `json:"relay,omitempty"`
	Account string    `json:"account,omitempty"`
	// FallbackAccount, for the direct route, names the stored relay
	// account that takes over what direct delivery cannot send.
	FallbackAccount string `json:"fallback_account,omitempty"`
	// Direct: DNS servers ("IP" or "IP:PORT"); the EHLO name, for relay
	// and direct.
	DNS  []string `json:"dns,omitempty"`
	HELO string   `json:"helo,omitempty"`
}

// RelayReq is a relay account. Password is used for this process's runs
// only: it is never stored or sent back.
type RelayReq struct {
	Host string `json:"host"`
	Port int    `json:"port,omitempty"`
	// TLS is "starttls" (default), "tls" (implicit TLS) or "none" (labs).
	TLS      string `json:"tls,omitempty"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
}

// Profile is the sending speed: a preset (Name: slow, normal, fast) with
// the values given on top. The sandbox runs unthrottled unless one is
// given; the other routes default to "normal".
type Profile struct {
	Name                 string   `json:"name,omitempty"`
	Rate                 *float64 `json:"rate,omitempty"`
	Connections          *int     `json:"connections,omitempty"`
	PerDomainConnections *int     `json:"per_domain_connections,omitempty"`
}

// Campaign is a campaign as the API shows it.
type Campaign struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	CreatedAt    time.Time `json:"created_at"`
	Status       string    `json:"status"`
	StatusReason string    `json:"status_reason,omitempty"`
	Route        string    `json:"route"`
	// Running: a run of it goes on in this process.
	Running bool    `json:"running"`
	Counts  *Counts `json:"counts,omitempty"`
	// Diagnosis is the doctor's report stored when the campaign paused
	// itself for a fault of the route.
	Diagnosis json.RawMessage `json:"diagnosis,omitempty"`
}

// Counts are a campaign's recipients by state, and its failures by class.
type Counts struct {
	Total         int            `json:"total"`
	Pending       int            `json:"pending"`
	Sending       int            `json:"sending"`
	Delivered     int            `json:"delivered"`
	Deferred      int            `json:"deferred"`
	Failed        int            `json:"failed"`
	Suppressed    int            `json:"suppressed"`
	FailedByClass map[string]int `json:"failed_by_class"`
	NextDue       *time.Time     `json:"next_due,omitempty"`
}

// Created is the answer to POST /api/v1/campaigns.
type Created struct {
	Campaign
	Imported int           `json:"imported"`
	Rejected []RejectedRow `json:"rejected"`
	// RejectedCount is every rejected row; Rejected lists the first
	// maxRejected.
	RejectedCount int      `json:"rejected_count"`
	Warnings      []string `json:"warnings,omitempty"`
}

// maxRejected is how many rejected rows an answer lists.
const maxRejected = 1000

// env is the environment the API checks routes in: a request names no
// server environment variable or file (a relay password comes in the
// request, or from the sealed settings by the account's name), so
// neither is read.
func (s *server) env(warn func(string)) campaign.Env {
	env := campaign.Env{
		Getenv:   func(string) string { return "" },
		ReadFile: func(string) ([]byte, error) { return nil, errors.New("files are not read through the API") },
		Warn:     warn,
	}
	if s.cfg.SecretKey != nil {
		env.Secret = setting.Secrets(s.settingsStore(), s.cfg.SecretKey)
	}
	return env
}

// settingsStore is where the app's settings are kept.
func (s *server) settingsStore() store.Accounts {
	if s.cfg.Settings != nil {
		return s.cfg.Settings
	}
	return s.cfg.Campaigns.Store()
}

func (s *server) createCampaign(w http.ResponseWriter, r *http.Request) {
	var req NewCampaign
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := s.create(r.Context(), &req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *server) create(ctx context.Context, req *NewCampaign) (*Created, error) {
	if strings.TrimSpace(req.Name) == "" {
		return nil, badRequest("name", "name is required")
	}
	if req.Message == "" {
		return nil, badRequest("message", "message is required: the template in RFC 5322 form (headers, blank line, text body)")
	}
	if int64(len(req.Message)) > s.cfg.Limits.Message {
		return nil, tooLarge("the message", s.cfg.Limits.Message)
	}
	if int64(len(req.HTML)) > s.cfg.Limits.Message {
		return nil, tooLarge("the HTML", s.cfg.Limits.Message)
	}
	maxAge, err := duration("max_age", req.MaxAge, 72*time.Hour)
	if err != nil {
		return nil, err
	}
	retryMin, err := duration("retry_min", req.RetryMin, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	rc, err := s.routeConfig(ctx, &req.Route)
	if err != nil {
		return nil, err
	}
	var warnings []string
	env := s.env(func(m string) { warnings = append(warnings, m) })
	rt, err := rc.Check(route.Sandbox, env)
	if errors.Is(err, campaign.ErrNoSecret) {
		// The stored account names a user and keeps no password.
		return nil, badRequest(accountField(&req.Route), "%v", err)
	}
	if err != nil {
		return nil, inputError(err)
	}
	profile, err := profileOf(req.Profile, rt.Route())
	if err != nil {
		return nil, err
	}
	msg := &store.Message{Template: []byte(req.Message), TemplateName: "message"}
	if req.HTML != "" {
		msg.HTML, msg.HTMLName = []byte(req.HTML), "html"
	}
	draft, err := campaign.NewCampaign{Name: req.Name, Message: msg, Routing: rt, Profile: profile,
		MaxAge: maxAge, RetryMin: retryMin}.Check(env)
	if err != nil {
		var ie *campaign.InputError
		if errors.As(err, &ie) {
			return nil, inputError(err)
		}
		return nil, badRequest("message", "the message does not parse: %v", err)
	}
	rows, err := s.rows(ctx, req)
	if err != nil {
		return nil, err
	}
	out := &Created{Rejected: []RejectedRow{}, Warnings: warnings}
	c, n, err := s.cfg.Campaigns.Create(ctx, draft, rows, func(e recipient.RowError) {
		out.RejectedCount++
		if len(out.Rejected) < maxRejected {
			out.Rejected = append(out.Rejected, RejectedRow{Line: e.Line, Reason: e.Reason})
		}
	})
	var (
		fe *recipient.FileError
		re *campaign.RenderError
	)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrExists):
		return nil, conflict("a campaign named %q exists already", req.Name)
	case errors.Is(err, campaign.ErrNoRecipients):
		e := badRequest("recipients_csv", "no valid recipient (%d rows rejected)", out.RejectedCount)
		e.Rejected = out.Rejected
		return nil, e
	case errors.As(err, &fe):
		return nil, listFileError("recipients_csv", fe, s.cfg.Limits)
	case errors.As(err, &re):
		return nil, badRequest("message", "%v", re)
	default:
		return nil, err
	}
	if rt.Relays.Len() > 0 {
		s.mu.Lock()
		s.relays[c.ID] = rt.Relays
		s.mu.Unlock()
	}
	view, err := s.view(ctx, c)
	if err != nil {
		return nil, err
	}
	out.Campaign, out.Imported = *view, n
	return out, nil
}

// rows is the recipient source of a new campaign.
func (s *server) rows(ctx context.Context, req *NewCampaign) (iter.Seq2[*recipient.Recipient, error], error) {
	switch {
	case req.ListID != 0 && req.RecipientsCSV != "":
		return nil, badRequest("list_id", "give list_id or recipients_csv, not both")
	case req.ListID != 0:
		if s.cfg.Lists == nil {
			return nil, notImplemented("lists")
		}
		if _, err := s.cfg.Lists.Get(ctx, req.ListID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, badRequest("list_id", "no list %d", req.ListID)
			}
			return nil, err
		}
		return s.cfg.Lists.Rows(ctx, req.ListID), nil
	case req.RecipientsCSV != "":
		return recipient.Rows(ctx, strings.NewReader(req.RecipientsCSV), s.cfg.Limits.List, nil), nil
	}
	return nil, badRequest("recipients_csv", "recipients are required: list_id or recipients_csv")
}

// routeConfig turns the request's route into what the command line's
// flags give the campaign service; a stored relay account becomes its URL
// without the password and its name, by which the password is looked up.
func (s *server) routeConfig(ctx context.Context, rr *RouteReq) (campaign.RouteConfig, error) {
	rc := campaign.RouteConfig{Route: rr.Kind, HELO: rr.HELO}
	if rr.Kind == "" {
		return rc, badRequest("route.kind", "route.kind is required: sandbox, relay or direct")
	}
	var account string
	switch route.Route(rr.Kind) {
	case route.Relay:
		switch {
		case rr.FallbackAccount != "":
			return rc, badRequest("route.fallback_account", "fallback_account is for the direct route; the relay route names its stored account in route.account")
		case rr.Relay != nil && rr.Account != "":
			return rc, badRequest("route.account", "give route.relay or route.account, not both")
		case rr.Account != "":
			account = rr.Account
		case rr.Relay == nil:
			return rc, badRequest("route.relay", "the relay route needs route.relay {host, port, tls, user, password} or route.account, a stored relay account")
		default:
			u, err := relayURL(rr.Relay)
			if err != nil {
				return rc, err
			}
			rc.Relays = []string{u}
		}
	case route.Direct:
		switch {
		case rr.Relay != nil:
			return rc, badRequest("route.relay", "the direct route's fallback relay is a stored relay account: route.fallback_account")
		case rr.Account != "":
			return rc, badRequest("route.account", "the direct route names its fallback relay in route.fallback_account")
		}
		rc.DNS, account = rr.DNS, rr.FallbackAccount
	case route.Sandbox:
		if rr.Relay != nil || len(rr.DNS) > 0 || rr.Account != "" || rr.FallbackAccount != "" {
			return rc, badRequest("route", "the sandbox route takes no relay and no DNS servers")
		}
	}
	if account == "" {
		return rc, nil
	}
	if s.cfg.SecretKey == nil {
		return rc, notImplemented("stored relay accounts")
	}
	set, err := setting.Load(ctx, s.settingsStore(), s.cfg.SecretKey)
	if err != nil {
		return rc, err
	}
	stored, _, err := set.Route(rr.Kind, []string{account})
	if errors.Is(err, setting.ErrUnknownRelay) {
		return rc, badRequest(accountField(rr), "there is no stored relay account %q", account)
	}
	if err != nil {
		return rc, err
	}
	rc.Relays, rc.RelayPasswordSettings = stored.Relays, stored.RelayPasswordSettings
	if rc.HELO == "" {
		rc.HELO = stored.HELO
	}
	rc.FallbackAfter = stored.FallbackAfter
	return rc, nil
}

// accountField is the request field that names a stored relay account.
func accountField(rr *RouteReq) string {
	if rr.FallbackAccount != "" {
		return "route.fallback_account"
	}
	return "route.account"
}

// relayURL is the relay account as the URL the command line's --relay
// takes, the password escaped in it (and so never stored).
func relayURL(rr *RelayReq) (string, error) {
	if rr.Host == "" || strings.ContainsAny(rr.Host, "/?#@[]: \t") {
		return "", badRequest("route.relay.host", "route.relay.host must be a host name or IPv4 address")
	}
	scheme := map[string]string{"": "smtp", "starttls": "smtp", "tls": "smtps", "none": "smtp+insecure"}[rr.TLS]
	if scheme == "" {
		return "", badRequest("route.relay.tls", "route.relay.tls must be starttls, tls or none, not %q", rr.TLS)
	}
	if rr.Port < 0 || rr.Port > 65535 {
		return "", badRequest("route.relay.port", "route.relay.port must be from 1 to 65535")
	}
	if rr.Password != "" && rr.User == "" {
		return "", badRequest("route.relay.user", "a relay password needs a user")
	}
	u := &url.URL{Scheme: scheme, Host: rr.Host}
	if rr.Port != 0 {
		u.Host = net.JoinHostPort(rr.Host, strconv.Itoa(rr.Port))
	}
	switch {
	case rr.Password != "":
		u.User = url.UserPassword(rr.User, rr.Password)
	case rr.User != "":
		u.User = url.User(rr.User)
	}
	return u.String(), nil
}

// inputError is a route setting or DKIM key that cannot be used. Its
// message never holds a password: the service redacts relay URLs.
func inputError(err error) error {
	var ie *campaign.InputError
	if !errors.As(err, &ie) {
		return err
	}
	field := map[string]string{"route": "route.kind", "helo": "route.helo", "dns": "route.dns", "": "route.relay"}[ie.Field]
	if field == "" {
		field = ie.Field
	}
	return badRequest(field, "%v", ie.Err)
}

func notImplemented(what string) *Error {
	return &Error{Status: http.StatusNotImplemented, Code: CodeNotImplemented, Message: what + " are not available in this version"}
}

// profileOf is the speed of a new campaign, as the command line chooses
// it: the sandbox unthrottled unless a speed is given, else the preset
// with the values given on top.
func profileOf(p *Profile, r route.Route) (throttle.Profile, error) {
	if p == nil && r == route.Sandbox {
		return throttle.Profile{Name: "sandbox", Connections: 4}, nil
	}
	if p == nil {
		p = &Profile{}
	}
	name := p.Name
	if name == "" {
		name = "normal"
	}
	out, err := throttle.Lookup(name)
	if err != nil {
		return out, badRequest("profile.name", "%v", err)
	}
	if p.Connections != nil {
		out.Connections = *p.Connections
		out.DomainConnections = min(out.DomainConnections, out.Connections)
	}
	if p.PerDomainConnections != nil {
		out.DomainConnections = *p.PerDomainConnections
	}
	if p.Rate != nil {
		out.Rate = *p.Rate
	}
	if err := out.Validate(); err != nil {
		return out, badRequest("profile", "%v", err)
	}
	return out, nil
}

func duration(field, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, badRequest(field, "%s must be a positive duration like \"72h\" or \"5m\", not %q", field, v)
	}
	return d, nil
}

// listFileError is a list that cannot be read as a whole: over a cap
// (413, naming it) or not CSV (400).
func listFileError(field string, fe *recipient.FileError, lim Limits) error {
	var limit int64
	switch {
	case errors.Is(fe, recipient.ErrTooManyRows):
		limit = int64(lim.List.MaxRows)
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Field: field,
			Message: fmt.Sprintf("%s (the cap is %d rows); nothing was imported", fe.Reason, limit)}
	case errors.Is(fe, recipient.ErrTooLarge):
		limit = lim.List.MaxBytes
	case errors.Is(fe, recipient.ErrRecordTooLarge):
		limit = int64(lim.List.MaxRecordBytes)
	case errors.Is(fe, recipient.ErrFieldTooLarge):
		limit = int64(lim.List.MaxFieldBytes)
	default:
		return badRequest(field, "%v; nothing was imported", fe)
	}
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Field: field,
		Message: fmt.Sprintf("%v (the cap is %s); nothing was imported", fe, sizeText(limit))}
}

// campaignID is the {id} of the path.
func campaignID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no %s %q", resource(r), r.PathValue("id"))}
	}
	return id, nil
}

// view is the campaign with its counts, read now.
func (s *server) view(ctx context.Context, c *store.Campaign) (*Campaign, error) {
	v := &Campaign{ID: c.ID, Name: c.Name, CreatedAt: c.CreatedAt, Status: string(c.Status),
		StatusReason: c.StatusReason, Route: string(campaign.RouteOf(c))}
	s.mu.Lock()
	v.Running = s.running[c.ID]
	s.mu.Unlock()
	if c.Status == store.CampaignPaused && len(c.Diagnosis) > 0 && json.Valid(c.Diagnosis) {
		v.Diagnosis = c.Diagnosis
	}
	n, err := s.cfg.Campaigns.Store().Counts(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	v.Counts = &Counts{Total: n.Total, Pending: n.ByState[queue.Pending], Sending: n.ByState[queue.Sending],
		Delivered: n.ByState[queue.Delivered], Deferred: n.ByState[queue.Deferred], Failed: n.ByState[queue.Failed],
		Suppressed: n.ByState[queue.Suppressed], FailedByClass: map[string]int{}}
	for cl, k := range n.ByClass {
		v.Counts.FailedByClass[string(cl)] = k
	}
	if !n.NextDue.IsZero() {
		t := n.NextDue
		v.Counts.NextDue = &t
	}
	return v, nil
}

func (s *server) listCampaigns(w http.ResponseWriter, r *http.Request) {
	cs, err := s.cfg.Campaigns.Store().Campaigns(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Campaigns []*Campaign `json:"campaigns"`
	}{Campaigns: []*Campaign{}}
	for i := range cs {
		v, err := s.view(r.Context(), &cs[i])
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out.Campaigns = append(out.Campaigns, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// campaign reads the campaign of the path.
func (s *server) campaign(r *http.Request) (*store.Campaign, error) {
	id, err := campaignID(r)
	if err != nil {
		return nil, err
	}
	return s.cfg.Campaigns.Store().Campaign(r.Context(), id)
}

func (s *server) getCampaign(w http.ResponseWriter, r *http.Request) {
	// Whether a run goes on is read before the campaign too: a run that
	// ends between the two reads was still writing its last status when
	// the campaign was read, so "not running" must mean the status read
	// is the one it left.
	var wasRunning bool
	if id, err := campaignID(r); err == nil {
		s.mu.Lock()
		wasRunning = s.running[id]
		s.mu.Unlock()
	}
	c, err := s.campaign(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.view(r.Context(), c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.Running = v.Running || wasRunning
	writeJSON(w, http.StatusOK, v)
}

// startCampaign runs the campaign (a new one, or a paused, interrupted or
// deferred one again) in this process, in the background: 202, then GET
// the campaign to follow it.
func (s *server) startCampaign(w http.ResponseWriter, r *http.Request) {
	c, err := s.campaign(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if c.Status == store.CampaignCancelled {
		s.fail(w, r, conflict("campaign %q is cancelled and sends no more", c.Name))
		return
	}
	if s.cfg.Fleet {
		s.release(w, r, c)
		return
	}
	var profile throttle.Profile
	if err := json.Unmarshal(c.Profile, &profile); err != nil {
		s.fail(w, r, fmt.Errorf("campaign %d: stored profile: %w", c.ID, err))
		return
	}
	// Another mailout process (mailout send or resume) may be sending
	// it: say so now, not in a log once the run fails to take the lock.
	if busy, err := s.cfg.Campaigns.Sending(c.ID); err != nil {
		s.fail(w, r, err)
		return
	} else if busy {
		s.fail(w, r, conflict("campaign %q is being sent already (by this server or another mailout process)", c.Name))
		return
	}
	s.mu.Lock()
	if s.running[c.ID] {
		s.mu.Unlock()
		s.fail(w, r, conflict("campaign %q is running already", c.Name))
		return
	}
	relays := s.relays[c.ID]
	if relays == nil {
		// Without the password given at creation, the stored route must
		// be complete: a password typed in a URL is never stored, one of
		// a stored relay account is read from the sealed settings again.
		if settings, err := campaign.SettingsOf(c); err == nil && len(settings.Relays) > 0 {
			for _, inURL := range settings.RelayPasswordInURL {
				if inURL {
					s.mu.Unlock()
					s.fail(w, r, conflict("%v", campaign.ErrNeedRelay))
					return
				}
			}
			if relays, err = s.storedRelays(settings); err != nil {
				s.mu.Unlock()
				s.fail(w, r, err)
				return
			}
		}
	}
	s.running[c.ID] = true
	s.mu.Unlock()
	if s.cfg.Runs != nil {
		s.cfg.Runs.Add(1)
	}
	go s.run(c, campaign.RunOptions{Relays: relays, Profile: profile, Wait: c.MaxAge})
	v, err := s.view(r.Context(), c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, v)
}

// release leaves the campaign to the workers of the fleet: 202, then GET
// the campaign to follow it. A relay password typed in a URL at creation
// is never stored, so no worker could send with it: such a campaign is
// refused (use a stored relay account).
func (s *server) release(w http.ResponseWriter, r *http.Request, c *store.Campaign) {
	if settings, err := campaign.SettingsOf(c); err == nil && slices.Contains(settings.RelayPasswordInURL, true) {
		s.fail(w, r, conflict("%v", campaign.ErrNeedRelay))
		return
	}
	if err := s.cfg.Campaigns.Release(r.Context(), c); err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeCampaign(w, r, c.ID, http.StatusAccepted)
}

// writeCampaign answers with the campaign as it is stored now, after a
// change of its status.
func (s *server) writeCampaign(w http.ResponseWriter, r *http.Request, id int64, status int) {
	c, err := s.cfg.Campaigns.Store().Campaign(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.view(r.Context(), c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

// storedRelays are the relay accounts of a stored route whose passwords
// are kept in the app's settings, with those passwords read now; nil when
// no relay of the route names a stored account.
func (s *server) storedRelays(settings *campaign.Settings) (*campaign.Relays, error) {
	if !slices.ContainsFunc(settings.RelayPasswordSettings, func(n string) bool { return n != "" }) {
		return nil, nil
	}
	if s.cfg.SecretKey == nil {
		return nil, conflict("%v", campaign.ErrNoSecret)
	}
	rc := campaign.RouteConfig{Route: string(settings.Route), Relays: settings.Relays,
		RelayPasswordSettings: settings.RelayPasswordSettings, HELO: settings.HELO}
	rt, err := rc.Check(settings.Route, s.env(nil))
	if errors.Is(err, campaign.ErrNoSecret) {
		// The account was deleted, or its password, since the campaign
		// was created.
		return nil, conflict("%v", err)
	}
	if err != nil {
		return nil, err
	}
	return rt.Relays, nil
}

// run sends the campaign until it ends (done, paused, cancelled, or
// deferred beyond its retry window) or the API's context is cancelled.
func (s *server) run(c *store.Campaign, o campaign.RunOptions) {
	defer func() {
		s.mu.Lock()
		delete(s.running, c.ID)
		s.mu.Unlock()
		if s.cfg.Runs != nil {
			s.cfg.Runs.Done()
		}
	}()
	res, err := s.cfg.Campaigns.Run(s.cfg.Context, c, o)
	if err != nil {
		s.log.Error("campaign run failed", "campaign", c.Name, "err", err)
		return
	}
	s.log.Info("campaign run ended", "campaign", c.Name, "stop", res.Stop, "reason", res.Reason)
}

func (s *server) pauseCampaign(w http.ResponseWriter, r *http.Request) {
	s.control(w, r, s.cfg.Campaigns.Pause)
}

func (s *server) cancelCampaign(w http.ResponseWriter, r *http.Request) {
	s.control(w, r, s.cfg.Campaigns.Cancel)
}

// control pauses or cancels: the status changes now, and a run going on
// here ends once its messages in flight are recorded.
func (s *server) control(w http.ResponseWriter, r *http.Request, op func(context.Context, int64) error) {
	id, err := campaignID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := op(r.Context(), id); err != nil {
		if errors.Is(err, campaign.ErrFinal) {
			err = conflict("%v", err)
		}
		s.fail(w, r, err)
		return
	}
	s.writeCampaign(w, r, id, http.StatusOK)
}

// Recipient is one recipient of a campaign and its last outcome.
type Recipient struct {
	ID                int64             `json:"id"`
	Line              int               `json:"line"`
	Email             string            `json:"email"`
	Domain            string            `json:"domain"`
	Fields            map[string]string `json:"fields"`
	State             string            `json:"state"`
	Attempts          int               `json:"attempts"`
	Class             string            `json:"class,omitempty"`
	Code              int               `json:"code,omitempty"`
	Enhanced          string            `json:"enhanced,omitempty"`
	Text              string            `json:"text,omitempty"`
	Via               string            `json:"via,omitempty"`
	MessageID         string            `json:"message_id,omitempty"`
	PossibleDuplicate bool              `json:"possible_duplicate,omitempty"`
	UpdatedAt         time.Time         `json:"updated_at"`
	DeliveredAt       *time.Time        `json:"delivered_at,omitempty"`
}

// Page limits of the recipient and subscriber listings.
const (
	defaultPage = 100
	maxPage     = 1000
)

// errPageFull stops a listing once a page is full.
var errPageFull = errors.New("page full")

// page reads after and limit from the query: keyset paging by ID.
func page(r *http.Request) (after int64, limit int, err error) {
	q := r.URL.Query()
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return 0, 0, badRequest("after", "after must be the id of the last row of the previous page")
		}
	}
	limit = defaultPage
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxPage {
			return 0, 0, badRequest("limit", "limit must be from 1 to %d", maxPage)
		}
	}
	return after, limit, nil
}

func (s *server) listRecipients(w http.ResponseWriter, r *http.Request) {
	c, err := s.campaign(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after, limit, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := store.DeliveryFilter{AfterID: after}
	q := r.URL.Query()
	for _, v := range q["state"] {
		st := queue.State(v)
		if !knownState(st) {
			s.fail(w, r, badRequest("state", "unknown state %q (pending, sending, delivered, deferred, failed, suppressed)", v))
			return
		}
		f.States = append(f.States, st)
	}
	for _, v := range q["class"] {
		cl, err := class(v)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		f.Classes = append(f.Classes, cl)
	}
	out := struct {
		Recipients []Recipient `json:"recipients"`
		// NextAfter is the after of the next page; absent on the last.
		NextAfter int64 `json:"next_after,omitempty"`
	}{Recipients: []Recipient{}}
	// The store streams in ID order from after; one row more than the
	// page says that another page follows.
	err = s.cfg.Campaigns.Store().Deliveries(r.Context(), c.ID, f, func(d *store.Delivery) error {
		if len(out.Recipients) == limit {
			out.NextAfter = out.Recipients[limit-1].ID
			return errPageFull
		}
		rec := Recipient{ID: d.ID, Line: d.Line, Email: d.Email, Domain: d.Domain, Fields: d.Fields,
			State: string(d.State), Attempts: d.Attempts, Class: string(d.Class), Code: d.Code,
			Enhanced: d.Enhanced, Text: d.Text, Via: d.Via, MessageID: d.MessageID,
			PossibleDuplicate: d.PossibleDuplicate, UpdatedAt: d.UpdatedAt}
		if rec.Fields == nil {
			rec.Fields = map[string]string{}
		}
		if !d.DeliveredAt.IsZero() {
			t := d.DeliveredAt
			rec.DeliveredAt = &t
		}
		out.Recipients = append(out.Recipients, rec)
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func knownState(st queue.State) bool {
	switch st {
	case queue.Pending, queue.Sending, queue.Delivered, queue.Deferred, queue.Failed, queue.Suppressed:
		return true
	}
	return false
}

func class(v string) (outcome.Class, error) {
	for _, c := range outcome.Classes {
		if string(c) == v {
			return c, nil
		}
	}
	return "", badRequest("class", "unknown outcome class %q", v)
}

// Requeue is the body of POST /api/v1/campaigns/{id}/requeue.
type Requeue struct {
	// Classes of failures to send again; empty = every failure.
	Classes []string `json:"classes"`
}

func (s *server) requeue(w http.ResponseWriter, r *http.Request) {
	c, err := s.campaign(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req Requeue
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	var classes []outcome.Class
	for _, v := range req.Classes {
		cl, err := class(v)
		if err != nil {
			err.(*Error).Field = "classes"
			s.fail(w, r, err)
			return
		}
		classes = append(classes, cl)
	}
	n, err := s.cfg.Campaigns.Requeue(r.Context(), c.ID, classes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Requeued int `json:"requeued"`
	}{n})
}
