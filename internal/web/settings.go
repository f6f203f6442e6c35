package web

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"mailout/internal/setting"
	"mailout/internal/store"
)

// The settings page: relay accounts (in failover order), direct delivery
// (DNS servers, HELO name, fallback relay), speed profiles, sender
// identities and API tokens. Relay passwords are write-only: sealed with
// the secret key on save, never rendered back; an empty password field
// keeps the stored one.

type relayForm struct {
	Index                       int // -1 for a new account
	Name, Host, Port, TLS, User string
	HasPassword                 bool
}

type directForm struct {
	DNS, HELO, FallbackRelay, FallbackAfter string
}

type profileForm struct {
	Index                                                  int
	Name, Rate, Connections, PerDomainConns, PerDomainRate string
}

type identityForm struct {
	Index      int
	Name, From string
}

type settingsView struct {
	S        *setting.Settings
	Relay    relayForm
	Direct   directForm
	Profile  profileForm
	Identity identityForm
	// Public is the public address form (publicurl.go).
	Public publicForm
	// Bounces is the bounce mailbox form, LastFetch the last read of the
	// mailbox (bounces.go).
	Bounces   bounceForm
	LastFetch *BounceFetch
	// Errors are the validation messages by form field ("relay.host").
	Errors map[string]string
	Tokens []store.APIToken
	// HasTokens: the token section is shown.
	HasTokens bool
	// NewToken is the plaintext of a token just created: shown once.
	NewToken, NewTokenName string
	TokenName              string
}

// loadSettings reads the stored settings, or answers with an error page
// (the secret key is missing or is not the one the passwords were sealed
// with).
func (s *server) loadSettings(w http.ResponseWriter, r *http.Request) *setting.Settings {
	if s.cfg.SecretKey == nil {
		s.render(w, r, http.StatusServiceUnavailable, "error", "error.internal", nil, "settings.nokey")
		return nil
	}
	st, err := setting.Load(r.Context(), s.cfg.Campaigns.Store(), s.cfg.SecretKey)
	if err != nil {
		s.log.Error("settings", "err", err)
		s.render(w, r, http.StatusInternalServerError, "error", "error.internal", nil, "settings.badkey")
		return nil
	}
	return st
}

// newSettingsView fills the forms: an empty one to add each kind, or the
// one the query's edit asks for ("relay.2", "profile.0", "identity.1").
func (s *server) newSettingsView(r *http.Request, st *setting.Settings) *settingsView {
	v := &settingsView{S: st, Errors: map[string]string{},
		Relay: relayForm{Index: -1, Port: "587", TLS: setting.TLSStartTLS}, Profile: profileForm{Index: -1, Connections: "1"},
		Identity: identityForm{Index: -1}}
	v.Direct = directForm{DNS: strings.Join(st.DNS, " "), HELO: st.HELO, FallbackRelay: st.FallbackRelay}
	if st.FallbackAfter > 0 {
		v.Direct.FallbackAfter = strconv.Itoa(st.FallbackAfter)
	}
	v.Public = publicForm{URL: st.PublicURL, Mailto: st.UnsubscribeMailto}
	if b := st.Bounces; b != nil {
		v.Bounces = bounceForm{URL: b.URL, CAFile: b.CAFile, HasPassword: b.HasPassword}
		if b.IntervalMinutes > 0 {
			v.Bounces.Interval = strconv.Itoa(b.IntervalMinutes)
		}
	}
	kind, n, _ := strings.Cut(r.URL.Query().Get("edit"), ".")
	i, err := strconv.Atoi(n)
	if err != nil || i < 0 {
		return v
	}
	switch {
	case kind == "relay" && i < len(st.Relays):
		a := st.Relays[i]
		v.Relay = relayForm{Index: i, Name: a.Name, Host: a.Host, Port: strconv.Itoa(a.Port), TLS: a.TLS, User: a.User, HasPassword: a.HasPassword}
	case kind == "profile" && i < len(st.Profiles):
		p := st.Profiles[i]
		v.Profile = profileForm{Index: i, Name: p.Name, Rate: ftoa(p.Rate), Connections: strconv.Itoa(p.Connections),
			PerDomainConns: strconv.Itoa(p.PerDomainConnections), PerDomainRate: ftoa(p.PerDomainRate)}
	case kind == "identity" && i < len(st.Identities):
		id := st.Identities[i]
		v.Identity = identityForm{Index: i, Name: id.Name, From: id.From}
	}
	return v
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func (s *server) settingsPage(w http.ResponseWriter, r *http.Request) {
	st := s.loadSettings(w, r)
	if st == nil {
		return
	}
	s.renderSettings(w, r, http.StatusOK, s.newSettingsView(r, st), "")
}

func (s *server) renderSettings(w http.ResponseWriter, r *http.Request, status int, v *settingsView, errKey string) {
	if s.cfg.Tokens != nil {
		ts, err := s.cfg.Tokens.Tokens(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		v.Tokens, v.HasTokens = ts, true
	}
	v.LastFetch = s.bounceFetcher().Last()
	s.render(w, r, status, "settings", "settings.title", v, errKey)
}

// fieldPath parses a setting.FieldError's field: "relays[2].host".
var fieldPath = regexp.MustCompile(`^([a-z_]+)(?:\[\d+\])?(?:\.([a-z_]+))?$`)

// formField names the page's form field a setting.FieldError is about.
func formField(field string) string {
	m := fieldPath.FindStringSubmatch(field)
	if m == nil {
		return field
	}
	section := map[string]string{"relays": "relay", "profiles": "profile", "identities": "identity"}[m[1]]
	if m[1] == "public_url" || m[1] == "unsubscribe_mailto" {
		return "public." + m[1]
	}
	if m[1] == "bounce_mailbox" {
		return "bounces." + m[2]
	}
	if section == "" { // dns, helo, fallback_relay, fallback_after
		return "direct." + m[1]
	}
	return section + "." + m[2]
}

// save stores st, or renders the page again with the validation error
// next to its field (v holds the form as typed).
func (s *server) save(w http.ResponseWriter, r *http.Request, st *setting.Settings, v *settingsView, done string) {
	if s.saveOK(w, r, st, v) {
		http.Redirect(w, r, "/settings?done="+done, http.StatusSeeOther)
	}
}

// saveOK stores st and reports true, or answers as save does and reports
// false.
func (s *server) saveOK(w http.ResponseWriter, r *http.Request, st *setting.Settings, v *settingsView) bool {
	err := setting.Save(r.Context(), s.cfg.Campaigns.Store(), s.cfg.SecretKey, st)
	var fe *setting.FieldError
	if errors.As(err, &fe) {
		v.Errors[formField(fe.Field)] = fe.Err.Error()
		// The lists show what is stored, not the refused change.
		if v.S, err = setting.Load(r.Context(), s.cfg.Campaigns.Store(), s.cfg.SecretKey); err != nil {
			s.fail(w, r, err)
			return false
		}
		s.renderSettings(w, r, http.StatusUnprocessableEntity, v, "settings.invalid")
		return false
	}
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	return true
}

// formIndex reads the form's index: -1 (a new item) or one of n items.
func formIndex(r *http.Request, n int) (int, bool) {
	i, err := strconv.Atoi(r.PostFormValue("index"))
	return i, err == nil && i >= -1 && i < n
}

// pathIndex reads the path's {n}: one of n items.
func pathIndex(r *http.Request, n int) (int, bool) {
	i, err := strconv.Atoi(r.PathValue("n"))
	return i, err == nil && i >= 0 && i < n
}

// atoiField reads a whole number the form holds; a bad one is a
// FieldError on field.
func atoiField(v string, field string) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, &setting.FieldError{Field: field, Err: errors.New("not a whole number")}
	}
	return n, nil
}

func atofField(v string, field string) (float64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, &setting.FieldError{Field: field, Err: errors.New("not a number")}
	}
	return f, nil
}

// formError renders the page with a FieldError of a form value that is
// not a number.
func (s *server) formError(w http.ResponseWriter, r *http.Request, v *settingsView, err error) {
	var fe *setting.FieldError
	if errors.As(err, &fe) {
		v.Errors[formField(fe.Field)] = fe.Err.Error()
	}
	s.renderSettings(w, r, http.StatusUnprocessableEntity, v, "settings.invalid")
}

func (s *server) saveRelay(w http.ResponseWriter, r *http.Request) {
	st := s.loadSettings(w, r)
	if st == nil {
		return
	}
	i, ok := formIndex(r, len(st.Relays))
	if !ok {
		s.notFound(w, r)
		return
	}
	f := relayForm{Index: i, Name: strings.TrimSpace(r.PostFormValue("name")), Host: strings.TrimSpace(r.PostFormValue("host")),
		Port: r.PostFormValue("port"), TLS: r.PostFormValue("tls"), User: strings.TrimSpace(r.PostFormValue("user"))}
	if i >= 0 {
		f.HasPassword = st.Relays[i].HasPassword
	}
	v := s.newSettingsView(r, st)
	v.Relay = f // never the password
	port, err := atoiField(f.Port, "relays[0].port")
	if err != nil {
		s.formError(w, r, v, err)
		return
	}
	a := setting.RelayAccount{Name: f.Name, Host: f.Host, Port: port, TLS: f.TLS, User: f.User,
		Password: r.PostFormValue("password")}
	if i < 0 {
		st.Relays = append(st.Relays, a)
	} else {
		old := st.Relays[i]
		if a.Password == "" && old.HasPassword && old.Name != a.Name {
			// The stored password is kept by name: carry it to the new name.
			if a.Password, err = st.RelayPassword(r.Context(), old.Name); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if st.FallbackRelay == old.Name {
			st.FallbackRelay = a.Name
		}
		st.Relays[i] = a
	}
	s.save(w, r, st, v, "relaysaved")
}

func (s *server) deleteRelay(w http.ResponseWriter, r *http.Request) {
	// The fallback relay may not name an account that is gone.
	deleteSetting(s, w, r, func(st *setting.Settings) *[]setting.RelayAccount { return &st.Relays },
		func(st *setting.Settings, a setting.RelayAccount) {
			if st.FallbackRelay == a.Name {
				st.FallbackRelay = ""
			}
		}, "relaydeleted")
}

// moveRelay moves an account up or down the failover order.
func (s *server) moveRelay(w http.ResponseWriter, r *http.Request) {
	st := s.loadSettings(w, r)
	if st == nil {
		return
	}
	i, ok := pathIndex(r, len(st.Relays))
	if !ok {
		s.notFound(w, r)
		return
	}
	j := i - 1
	if r.PostFormValue("dir") == "down" {
		j = i + 1
	}
	if j >= 0 && j < len(st.Relays) {
		st.Relays[i], st.Relays[j] = st.Relays[j], st.Relays[i]
	}
	s.save(w, r, st, s.newSettingsView(r, st), "relaymoved")
}

func (s *server) saveDirect(w http.ResponseWriter, r *http.Request) {
	st := s.loadSettings(w, r)
	if st == nil {
		return
	}
	f := directForm{DNS: r.PostFormValue("dns"), HELO: strings.TrimSpace(r.PostFormValue("helo")),
		FallbackRelay: r.PostFormValue("fallback_relay"), FallbackAfter: r.PostFormValue("fallback_after")}
	v := s.newSettingsView(r, st)
	v.Direct = f
	after, err := atoiField(f.FallbackAfter, "fallback_after")
	if err != nil {
		s.formError(w, r, v, err)
		return
	}
	st.DNS = strings.FieldsFunc(f.DNS, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	st.HELO, st.FallbackRelay, st.FallbackAfter = f.HELO, f.FallbackRelay, after
	s.save(w, r, st, v, "directsaved")
}

func (s *server) saveProfile(w http.ResponseWriter, r *http.Request) {
	st := s.loadSettings(w, r)
	if st == nil {
		return
	}
	i, ok := formIndex(r, len(st.Profiles))
	if !ok {
		s.notFound(w, r)
		return
	}
	f := profileForm{Index: i, Name: strings.TrimSpace(r.PostFormValue("name")), Rate: r.PostFormValue("rate"),
		Connections: r.PostFormValue("connections"), PerDomainConns: r.PostFormValue("per_domain_connections"),
		PerDomainRate: r.PostFormValue("per_domain_rate")}
	v := s.newSettingsView(r, st)
	v.Profile = f
	var p setting.Profile
	var err error
	p.Name = f.Name
	if p.Rate, err = atofField(f.Rate, "profiles[0].rate"); err == nil {
		if p.Connections, err = atoiField(f.Connections, "profiles[0].connections"); err == nil {
			if p.PerDomainConnections, err = atoiField(f.PerDomainConns, "profiles[0].per_domain_connections"); err == nil {
				p.PerDomainRate, err = atofField(f.PerDomainRate, "profiles[0].per_domain_rate")
			}
		}
	}
	if err != nil {
		s.formError(w, r, v, err)
		return
	}
	if i < 0 {
		st.Profiles = append(st.Profiles, p)
	} else {
		st.Profiles[i] = p
	}
	s.save(w, r, st, v, "profilesaved")
}

func (s *server) deleteProfile(w http.ResponseWriter, r *http.Request) {
	deleteSetting(s, w, r, func(st *setting.Settings) *[]setting.Profile { return &st.Profiles }, nil, "profiledeleted")
}

func (s *server) saveIdentity(w http.ResponseWriter, r *http.Request) {
	st := s.loadSettings(w, r)
	if st == nil {
		return
	}
	i, ok := formIndex(r, len(st.Identities))
	if !ok {
		s.notFound(w, r)
		return
	}
	f := identityForm{Index: i, Name: strings.TrimSpace(r.PostFormValue("name")), From: strings.TrimSpace(r.PostFormValue("from"))}
	v := s.newSettingsView(r, st)
	v.Identity = f
	id := setting.Identity{Name: f.Name, From: f.From}
	if i < 0 {
		st.Identities = append(st.Identities, id)
	} else {
		st.Identities[i] = id
	}
	s.save(w, r, st, v, "identitysaved")
}

func (s *server) deleteIdentity(w http.ResponseWriter, r *http.Request) {
	deleteSetting(s, w, r, func(st *setting.Settings) *[]setting.Identity { return &st.Identities }, nil, "identitydeleted")
}

// createToken makes an API token and shows its plaintext once: only its
// hash is stored.
func (s *server) createToken(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Tokens == nil {
		s.notFound(w, r)
		return
	}
	st := s.loadSettings(w, r)
	if st == nil {
		return
	}
	name := strings.TrimSpace(r.PostFormValue("token_name"))
	v := s.newSettingsView(r, st)
	v.TokenName = name
	plain, err := s.cfg.Tokens.CreateToken(r.Context(), name)
	switch {
	case errors.Is(err, store.ErrExists):
		v.Errors["token.name"] = "" // the alert says it
		s.renderSettings(w, r, http.StatusConflict, v, "settings.tokenexists")
		return
	case err != nil && s.cfg.TokenErrors.BadName != nil && errors.Is(err, s.cfg.TokenErrors.BadName):
		s.renderSettings(w, r, http.StatusUnprocessableEntity, v, "settings.tokenbadname")
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, http.StatusOK, "token_created", "settings.tokencreated", &settingsView{NewToken: plain, NewTokenName: name}, "")
}

func (s *server) deleteToken(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Tokens == nil {
		s.notFound(w, r)
		return
	}
	err := s.cfg.Tokens.DeleteToken(r.Context(), r.PostFormValue("name"))
	if err != nil && s.cfg.TokenErrors.NoToken != nil && errors.Is(err, s.cfg.TokenErrors.NoToken) {
		s.notFound(w, r)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings?done=tokendeleted", http.StatusSeeOther)
}

// deleteSetting deletes item {n} (the path's index) of the list items
// picks out of the settings, after before (when not nil) has adjusted
// what refers to it, and saves; an index out of range is not found.
func deleteSetting[T any](s *server, w http.ResponseWriter, r *http.Request, items func(*setting.Settings) *[]T,
	before func(*setting.Settings, T), done string) {
	st := s.loadSettings(w, r)
	if st == nil {
		return
	}
	list := items(st)
	i, ok := pathIndex(r, len(*list))
	if !ok {
		s.notFound(w, r)
		return
	}
	if before != nil {
		before(st, (*list)[i])
	}
	*list = slices.Delete(*list, i, i+1)
	s.save(w, r, st, s.newSettingsView(r, st), done)
}
