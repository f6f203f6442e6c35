// Package setting keeps the web app's settings: relay accounts, DNS
// servers, the EHLO name, the fallback relay, speed profiles and sender
// identities. They are stored as JSON under one settings key, so a save is
// all or nothing; a relay account's password is sealed with the secret
// key (internal/secret) before it is stored and is never handed back to a
// front end: Load leaves Password empty, Save keeps the stored password
// when the given one is empty, and only the campaign service reads it,
// through RelayPassword (Env.Secret of RouteConfig and Secrets).
package setting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"

	"mailout/internal/addr"
	"mailout/internal/campaign"
	"mailout/internal/mx"
	"mailout/internal/secret"
	"mailout/internal/smtpclient"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// Key is the settings key the app's settings are stored under.
const Key = "app"

// TLS modes of a relay account.
const (
	TLSStartTLS = "starttls" // STARTTLS required before AUTH (port 587)
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // no TLS at all: labs only
)

// Settings are the app's settings as a front end shows and edits them.
type Settings struct {
	Relays []RelayAccount `json:"relays,omitempty"`
	// DNS servers for the direct route, "IP" or "IP:port"; empty = the
	// system's.
	DNS  []string `json:"dns,omitempty"`
	HELO string   `json:"helo,omitempty"`
	// FallbackRelay names the relay account that takes over what direct
	// delivery cannot send, after FallbackAfter temporary failures.
	FallbackRelay string     `json:"fallback_relay,omitempty"`
	FallbackAfter int        `json:"fallback_after,omitempty"`
	Profiles      []Profile  `json:"profiles,omitempty"`
	Identities    []Identity `json:"identities,omitempty"`
	// PublicURL is where this app is reached from the Internet (https,
	// or http on a loopback host): campaigns made in the web app get
	// one-click unsubscribe links under it. serve --public-url wins over
	// it. UnsubscribeMailto, with PublicURL, is an address
	// List-Unsubscribe also names.
	PublicURL         string `json:"public_url,omitempty"`
	UnsubscribeMailto string `json:"unsubscribe_mailto,omitempty"`
	// Bounces is the bounce mailbox serve reads on a timer; nil = none.
	Bounces *BounceMailbox `json:"bounce_mailbox,omitempty"`

	// Where Load read them, for RelayPassword.
	st  store.Accounts
	box *secret.Key
}

// RelayAccount is an SMTP relay account. Password is write-only: empty
// in what Load returns, and an empty Password given to Save keeps the
// stored one.
type RelayAccount struct {
	Name     string `json:"name"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	TLS      string `json:"tls"`
	User     string `json:"user,omitempty"`
	Password string `json:"-"`
	// HasPassword reports (on Load) that a password is stored.
	HasPassword bool `json:"-"`
}

// Profile is a custom speed profile: the "normal" preset with these
// values on top, as the command line's --connections, --rate,
// --domain-connections and --domain-rate do.
type Profile struct {
	Name string `json:"name"`
	// Rate is messages per second overall; 0 = unlimited.
	Rate        float64 `json:"rate"`
	Connections int     `json:"connections"`
	// PerDomainConnections and PerDomainRate (messages per minute) shape
	// each destination domain on the direct route; 0 = no own limit.
	PerDomainConnections int     `json:"per_domain_connections,omitempty"`
	PerDomainRate        float64 `json:"per_domain_rate,omitempty"`
}

// Identity is a sender a campaign may use: a name and a From address.
type Identity struct {
	Name string `json:"name"`
	From string `json:"from"`
}

// FieldError is a setting that cannot be used; Field names it as the
// JSON does ("relays[0].port", "dns[1]", "profiles[0].rate").
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// ErrUnknownRelay is a relay account name that is not in the settings.
var ErrUnknownRelay = errors.New("no relay account of that name")

// stored is the stored form: the relay passwords sealed.
type stored struct {
	Settings
	Sealed map[string][]byte `json:"sealed_passwords,omitempty"` // relay name → secret.Key.Seal(password)
	// SealedMailbox is the bounce mailbox's password, sealed.
	SealedMailbox []byte `json:"sealed_mailbox_password,omitempty"`
}

func read(ctx context.Context, st store.Accounts) (*stored, error) {
	var s stored
	b, err := st.Setting(ctx, Key)
	if errors.Is(err, store.ErrNotFound) {
		return &s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return &s, nil
}

// Load reads the settings. Relay passwords are not returned (HasPassword
// says which accounts have one), but each is opened once, so that a
// secret key other than the one they were sealed with is found here:
// secret.ErrWrongKey.
func Load(ctx context.Context, st store.Accounts, box *secret.Key) (*Settings, error) {
	s, err := read(ctx, st)
	if err != nil {
		return nil, err
	}
	for i := range s.Relays {
		sealed, ok := s.Sealed[s.Relays[i].Name]
		if !ok {
			continue
		}
		if _, err := box.Open(sealed); err != nil {
			return nil, fmt.Errorf("settings: password of relay account %q: %w", s.Relays[i].Name, err)
		}
		s.Relays[i].HasPassword = true
	}
	if s.Bounces != nil && s.SealedMailbox != nil {
		if _, err := box.Open(s.SealedMailbox); err != nil {
			return nil, fmt.Errorf("settings: password of the bounce mailbox: %w", err)
		}
		b := *s.Bounces
		b.HasPassword = true
		s.Bounces = &b
	}
	out := s.Settings
	out.st, out.box = st, box
	return &out, nil
}

// Save checks and stores the settings. A relay account given with an
// empty Password keeps the password stored for its name (a renamed
// account needs its password again).
func Save(ctx context.Context, st store.Accounts, box *secret.Key, s *Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	old, err := read(ctx, st)
	if err != nil {
		return err
	}
	next := stored{Settings: *s, Sealed: map[string][]byte{}}
	next.Relays = append([]RelayAccount(nil), s.Relays...)
	for i := range next.Relays {
		r := &next.Relays[i]
		switch {
		case r.Password != "":
			next.Sealed[r.Name] = box.Seal([]byte(r.Password))
		case old.Sealed[r.Name] != nil:
			next.Sealed[r.Name] = old.Sealed[r.Name]
		}
		r.Password, r.HasPassword = "", false
	}
	if s.Bounces != nil {
		m := *s.Bounces
		switch {
		case m.Password != "":
			next.SealedMailbox = box.Seal([]byte(m.Password))
		case old.SealedMailbox != nil:
			next.SealedMailbox = old.SealedMailbox
		}
		m.Password, m.HasPassword = "", false
		next.Bounces = &m
	}
	b, err := json.Marshal(&next)
	if err != nil {
		return err
	}
	if err := st.PutSetting(ctx, Key, b); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	s.st, s.box = st, box
	return nil
}

// RelayPassword is the stored password of relay account name, read from
// the store now (so a password changed since Load is the one used): for
// the campaign service only, never for a page or an API answer.
func (s *Settings) RelayPassword(ctx context.Context, name string) (string, error) {
	if s.st == nil {
		return "", errors.New("settings: not loaded from a store")
	}
	return relayPassword(ctx, s.st, s.box, name)
}

// Secrets returns the campaign service's Env.Secret: the stored password
// of a relay account by name, read from st at each call. serve gives it
// to campaign.Options so that a campaign resumes with the stored password.
func Secrets(st store.Accounts, box *secret.Key) func(name string) (string, error) {
	return func(name string) (string, error) {
		return relayPassword(context.Background(), st, box, name)
	}
}

func relayPassword(ctx context.Context, st store.Accounts, box *secret.Key, name string) (string, error) {
	s, err := read(ctx, st)
	if err != nil {
		return "", err
	}
	sealed, ok := s.Sealed[name]
	if !ok {
		for _, r := range s.Relays {
			if r.Name == name {
				return "", nil // an account without a password
			}
		}
		return "", fmt.Errorf("%q: %w", name, ErrUnknownRelay)
	}
	p, err := box.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("settings: password of relay account %q: %w", name, err)
	}
	return string(p), nil
}

// Validate reports the first setting that cannot be used, as a
// *FieldError.
func (s *Settings) Validate() error {
	bad := func(field string, format string, args ...any) error {
		return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
	}
	names := map[string]bool{}
	for i, r := range s.Relays {
		f := fmt.Sprintf("relays[%d]", i)
		switch {
		case r.Name == "":
			return bad(f+".name", "a name is required")
		case names[r.Name]:
			return bad(f+".name", "%q is used twice", r.Name)
		}
		names[r.Name] = true
		if _, err := netip.ParseAddr(r.Host); err != nil {
			if _, err := addr.HostName(r.Host); err != nil || r.Host == "" {
				return bad(f+".host", "%q is not a host name or an IP address", r.Host)
			}
		}
		// RFC 6335 §6: ports are 1 to 65535 (0 is reserved).
		if r.Port < 1 || r.Port > 65535 {
			return bad(f+".port", "%d is not a number from 1 to 65535", r.Port)
		}
		switch r.TLS {
		case TLSStartTLS, TLSImplicit, TLSNone:
		default:
			return bad(f+".tls", "%q is not starttls, tls or none", r.TLS)
		}
		if r.Password != "" && r.User == "" {
			return bad(f+".user", "a password needs a user name")
		}
	}
	for i, d := range s.DNS {
		if _, err := mx.ParseServer(d); err != nil {
			return bad(fmt.Sprintf("dns[%d]", i), "%q is not an IP address or IP:port", d)
		}
	}
	if s.HELO != "" {
		// RFC 5321 §4.1.1.1: the EHLO argument is a domain name or an
		// address literal.
		if _, err := smtpclient.EHLOName(s.HELO); err != nil {
			return &FieldError{Field: "helo", Err: err}
		}
	}
	if s.FallbackRelay != "" && !names[s.FallbackRelay] {
		return &FieldError{Field: "fallback_relay", Err: fmt.Errorf("%q: %w", s.FallbackRelay, ErrUnknownRelay)}
	}
	if s.FallbackAfter < 0 {
		return bad("fallback_after", "must not be negative")
	}
	profiles := map[string]bool{}
	for i, p := range s.Profiles {
		f := fmt.Sprintf("profiles[%d]", i)
		finite := !math.IsNaN(p.Rate) && !math.IsInf(p.Rate, 0) && !math.IsNaN(p.PerDomainRate) && !math.IsInf(p.PerDomainRate, 0)
		switch {
		case p.Name == "":
			return bad(f+".name", "a name is required")
		case profiles[p.Name]:
			return bad(f+".name", "%q is used twice", p.Name)
		case !finite || p.Rate < 0:
			return bad(f+".rate", "must be 0 (unlimited) or a positive number of messages per second")
		case p.Connections < 1:
			return bad(f+".connections", "must be at least 1")
		case p.PerDomainConnections < 0 || p.PerDomainConnections > p.Connections:
			return bad(f+".per_domain_connections", "must be from 0 to connections (%d)", p.Connections)
		case p.PerDomainRate < 0:
			return bad(f+".per_domain_rate", "must be 0 (unlimited) or a positive number of messages per minute")
		}
		profiles[p.Name] = true
	}
	// The campaign service's check of serve --public-url and
	// --unsubscribe-mailto, with the fields named as the JSON does.
	if _, err := s.OneClick().Check(); err != nil {
		var ie *campaign.InputError
		if errors.As(err, &ie) {
			field := map[string]string{"public-url": "public_url", "unsubscribe-mailto": "unsubscribe_mailto"}[ie.Field]
			if field != "" {
				return &FieldError{Field: field, Err: ie.Err}
			}
		}
		return &FieldError{Field: "public_url", Err: err}
	}
	if s.Bounces != nil {
		if err := s.Bounces.validate(); err != nil {
			return err
		}
	}
	for i, id := range s.Identities {
		f := fmt.Sprintf("identities[%d]", i)
		if id.Name == "" {
			return bad(f+".name", "a name is required")
		}
		a, err := mail.ParseAddress(id.From)
		if err == nil {
			_, err = addr.Parse(a.Address)
		}
		if err != nil {
			return &FieldError{Field: f + ".from", Err: err}
		}
	}
	return nil
}

// OneClick is the stored one-click unsubscribe: the public address and
// the optional mailto, as serve's --public-url and --unsubscribe-mailto
// give them.
func (s *Settings) OneClick() campaign.OneClick {
	return campaign.OneClick{PublicURL: s.PublicURL, Mailto: s.UnsubscribeMailto}
}

// Throttle is the speed profile the scheduler runs: the "normal" preset
// with the profile's values on top.
func (p Profile) Throttle() throttle.Profile {
	t, _ := throttle.Lookup("normal")
	t.Name = p.Name
	t.Connections, t.Rate = p.Connections, p.Rate
	t.DomainConnections, t.DomainRate = p.PerDomainConnections, p.PerDomainRate
	return t
}

// Profile returns the custom profile called name, else the preset of
// that name (throttle.Lookup).
func (s *Settings) Profile(name string) (throttle.Profile, error) {
	for _, p := range s.Profiles {
		if p.Name == name {
			return p.Throttle(), nil
		}
	}
	return throttle.Lookup(name)
}

// relay returns the account called name.
func (s *Settings) relay(name string) (*RelayAccount, error) {
	for i := range s.Relays {
		if s.Relays[i].Name == name {
			return &s.Relays[i], nil
		}
	}
	return nil, &FieldError{Field: "relay", Err: fmt.Errorf("%q: %w", name, ErrUnknownRelay)}
}

// URL is the account as a relay URL without its password, as the command
// line writes it (smtp://, smtps://, smtp+insecure://).
func (r *RelayAccount) URL() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(r.Host, strconv.Itoa(r.Port))}
	switch r.TLS {
	case TLSImplicit:
		u.Scheme = "smtps"
	case TLSNone:
		u.Scheme = "smtp+insecure"
	}
	if r.User != "" {
		u.User = url.User(r.User)
	}
	return u.String()
}

// Route is RouteConfig with an error for a relay name that is not a
// stored account (*FieldError wrapping ErrUnknownRelay).
func (s *Settings) Route(kind string, relayNames []string) (campaign.RouteConfig, campaign.Env, error) {
	rc := campaign.RouteConfig{Route: kind, HELO: s.HELO}
	env := campaign.Env{}
	if s.st != nil {
		env.Secret = Secrets(s.st, s.box)
	}
	if kind == "direct" {
		rc.DNS, rc.FallbackAfter = s.DNS, s.FallbackAfter
		if len(relayNames) == 0 && s.FallbackRelay != "" {
			relayNames = []string{s.FallbackRelay}
		}
	}
	if kind == "sandbox" {
		relayNames = nil
	}
	for _, name := range relayNames {
		r, err := s.relay(name)
		if err != nil {
			return rc, env, err
		}
		rc.Relays = append(rc.Relays, r.URL())
		pw := ""
		if r.User != "" {
			pw = r.Name // the password comes from the settings, by name
		}
		rc.RelayPasswordSettings = append(rc.RelayPasswordSettings, pw)
	}
	return rc, env, nil
}

// RouteConfig gives the campaign service a route of kind ("sandbox",
// "relay", "direct") through the named relay accounts (for "direct", the
// fallback relay when none is named): relay URLs without passwords, each
// password named by its account (campaign.RouteConfig.RelayPasswordSettings)
// and looked up through the returned Env's Secret, at creation and at
// every resume. Names that are not stored accounts are left out; Route
// reports them.
func (s *Settings) RouteConfig(kind string, relayNames []string) (campaign.RouteConfig, campaign.Env) {
	var known []string
	for _, n := range relayNames {
		if _, err := s.relay(n); err == nil {
			known = append(known, n)
		}
	}
	rc, env, _ := s.Route(kind, known)
	return rc, env
}
