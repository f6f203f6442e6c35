package campaign

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"mailout/internal/addr"
	"mailout/internal/doctor"
	"mailout/internal/mx"
	"mailout/internal/route"
	"mailout/internal/smtpclient"
	"mailout/internal/store"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// RouteConfig is a route as a front end asks for it: what a person typed or
// chose, before it is checked. Field names follow the command line's flags
// and the configuration file's keys, which InputError.Field names.
type RouteConfig struct {
	// Route is "sandbox", "relay" or "direct"; "" takes the relay route
	// when Relays are given, else the default the caller passes to Check.
	Route string
	// Relays are relay account URLs, tried in order: the relay route's
	// accounts, or with the direct route the fallback relay (hybrid).
	Relays []string
	// PasswordEnv and PasswordFile give the password of a relay account
	// that names a user and no password.
	PasswordEnv, PasswordFile string
	// RelayPasswordSettings, in step with Relays, name for each relay the
	// stored relay account (the web app's settings) whose password it
	// uses, or "" for none. The password is looked up with Env.Secret,
	// now and at every later run; only the name is stored.
	RelayPasswordSettings []string
	// RelayCA is a PEM file of the CA that signed the relay's certificate.
	RelayCA string
	// HELO is the EHLO name; "" = this machine's name.
	HELO string
	// Direct route: DNS servers ("IP" or "IP:PORT"), the lab setting that
	// allows MX hosts on loopback and private addresses, and the MX port
	// (0 or 25 = 25).
	DNS             []string
	AllowLoopbackMX bool
	MXPort          int
	// FallbackAfter hands a recipient to the fallback relay after this
	// many temporary failures (hybrid route).
	FallbackAfter int
	// SMTP timeouts; zero takes the RFC 5321 §4.5.3.2 defaults.
	ConnectTimeout, CommandTimeout, DataTimeout time.Duration
	// ReturnPath, when set, is the bounce address: each message's envelope
	// sender becomes a VERP address made from it (see package verp).
	ReturnPath string
}

// InputError is a route setting that cannot be used. Field names it as
// the command line and the configuration file do ("route", "helo", "dns",
// "relay-ca", "relay-password-env", "relay-password-file", and "relay" for
// a password kept in the app's settings); it is "" when
// Err names what is wrong itself (a relay URL).
type InputError struct {
	Field string
	Err   error
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return e.Field + ": " + e.Err.Error()
}

func (e *InputError) Unwrap() error { return e.Err }

// Env is how the service reaches outside itself for a route: the
// environment and files that hold passwords, and where warnings for a
// person go. Zero fields take os.Getenv, os.ReadFile and no warnings.
type Env struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
	// Warn receives a warning a person should read (a password that
	// crosses the network in clear text, an EHLO name that is not fully
	// qualified). It never contains a secret.
	Warn func(string)
	// Secret returns the password of the stored relay account name (see
	// RouteConfig.RelayPasswordSettings); nil where no settings are kept
	// (the command line), which makes such a campaign ErrNoSecret.
	Secret func(name string) (string, error)
}

// ErrNoSecret is returned when a relay's password is kept in the web
// app's settings and cannot be had here: no settings in this process, or
// no such account any more.
var ErrNoSecret = errors.New("the relay password is kept in the app's settings and is not available here (run the campaign from mailout serve, or give --relay again)")

// secretPassword is the stored relay account's password for relay a.
func (e Env) secretPassword(a *transport.RelayAccount, name string) (string, error) {
	if e.Secret == nil {
		return "", fmt.Errorf("relay %s, account %q: %w", a, name, ErrNoSecret)
	}
	p, err := e.Secret(name)
	if err != nil {
		return "", fmt.Errorf("relay %s, account %q: %w: %w", a, name, ErrNoSecret, err)
	}
	if p == "" {
		return "", fmt.Errorf("relay %s, account %q has no password: %w", a, name, ErrNoSecret)
	}
	return p, nil
}

func (e Env) withDefaults() Env {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.ReadFile == nil {
		e.ReadFile = os.ReadFile
	}
	if e.Warn == nil {
		e.Warn = func(string) {}
	}
	return e
}

// Relays are relay accounts with their passwords, for this process only:
// they are never stored, logged or printed.
type Relays struct {
	accounts []*transport.RelayAccount
	// redacted are the storable URLs; inURL marks a password typed in
	// the URL, which is not stored, so a later run needs the URL again.
	redacted []string
	inURL    []bool
}

// Len is the number of accounts.
func (r *Relays) Len() int {
	if r == nil {
		return 0
	}
	return len(r.accounts)
}

// ParseRelays reads relay account URLs (smtp://, smtps://,
// smtp+insecure://); an account with a user name and no password takes it
// from the environment variable passwordEnv or the file passwordFile.
func ParseRelays(urls []string, passwordEnv, passwordFile string, env Env) (*Relays, error) {
	env = env.withDefaults()
	out := &Relays{}
	for _, raw := range urls {
		acc, src, err := transport.ParseRelayURL(raw, env.Getenv, env.ReadFile)
		if err != nil {
			return nil, &InputError{Err: err}
		}
		if acc.Password == "" && acc.Username != "" {
			switch {
			case passwordEnv != "":
				if acc.Password = env.Getenv(passwordEnv); acc.Password == "" {
					return nil, &InputError{Field: "relay-password-env", Err: fmt.Errorf("%s is empty or not set", passwordEnv)}
				}
				src.Env = passwordEnv
			case passwordFile != "":
				b, err := env.ReadFile(passwordFile)
				if err != nil {
					return nil, &InputError{Field: "relay-password-file", Err: err}
				}
				acc.Password = strings.TrimRight(string(b), "\r\n")
				src.File = passwordFile
			}
		}
		if acc.Insecure && acc.Password != "" {
			// The user asked for no TLS; say plainly what that costs.
			env.Warn(fmt.Sprintf("%s has no TLS: the password of %q crosses the network in clear text, readable by anyone on the path. Use smtp:// (STARTTLS) or smtps:// unless this is a lab.", acc, acc.Username))
		}
		out.accounts = append(out.accounts, acc)
		out.redacted = append(out.redacted, acc.Redacted(src.Env, src.File))
		out.inURL = append(out.inURL, src.InURL)
	}
	return out, nil
}

// fromSettings sets the password of each relay that names a stored relay
// account (names, in step with the relays) from env.Secret.
func (r *Relays) fromSettings(names []string, env Env) error {
	if len(names) > len(r.accounts) {
		return &InputError{Field: "relay", Err: errors.New("more stored relay accounts than relays")}
	}
	for i, name := range names {
		if name == "" {
			continue
		}
		a := r.accounts[i]
		if a.Password != "" {
			return &InputError{Field: "relay", Err: fmt.Errorf("relay %s: password given twice (and kept in the settings)", a)}
		}
		p, err := env.secretPassword(a, name)
		if err != nil {
			return &InputError{Field: "relay", Err: err}
		}
		a.Password = p
		if a.Insecure {
			env.Warn(fmt.Sprintf("%s has no TLS: the password of %q crosses the network in clear text, readable by anyone on the path. Use smtp:// (STARTTLS) or smtps:// unless this is a lab.", a, a.Username))
		}
	}
	return nil
}

// Routing is a checked route ready to use: its storable Settings and, in
// memory only, the relay accounts with their passwords and the relay's TLS
// roots. It turns into the transport of a run (transport) and into the
// doctor's configuration (Doctor), each in one place.
type Routing struct {
	Settings *Settings
	Relays   *Relays
	// RootCAs are the relay's TLS roots: nil = the system's.
	RootCAs *x509.CertPool
}

// Route is the route.
func (r *Routing) Route() route.Route { return r.Settings.Route }

// Check checks a route a front end asked for, with def the route when
// none is named and no relay is given. It parses the relay URLs (reading
// passwords from their environment variable or file), loads the relay's
// CA file, checks the DNS servers and the EHLO name (default: this
// machine's name, with a warning when it is not fully qualified), and
// returns the route ready to store and use. Errors are *InputError.
func (rc RouteConfig) Check(def route.Route, env Env) (*Routing, error) {
	env = env.withDefaults()
	r, err := rc.route(def)
	if err != nil {
		return nil, err
	}
	s := &Settings{Route: r, RelayCA: rc.RelayCA, HELO: rc.HELO, MessageIDSalt: NewSalt(),
		ConnectTimeout: rc.ConnectTimeout, CommandTimeout: rc.CommandTimeout, DataTimeout: rc.DataTimeout}
	if r.Sends() {
		if s.HELO == "" {
			s.HELO = defaultHELO(env)
		}
		// RFC 5321 §4.1.1.1: the EHLO argument is the client's domain
		// name or an address literal.
		if _, err := smtpclient.EHLOName(s.HELO); err != nil {
			return nil, &InputError{Field: "helo", Err: err}
		}
	}
	for _, d := range rc.DNS {
		if _, err := mx.ParseServer(d); err != nil {
			return nil, &InputError{Field: "dns", Err: fmt.Errorf("%q: %w", d, err)}
		}
	}
	// The DNS servers also resolve a relay's host name for the doctor.
	s.DNS, s.AllowLoopbackMX, s.FallbackAfter = rc.DNS, rc.AllowLoopbackMX, rc.FallbackAfter
	if rc.MXPort != 25 {
		s.MXPort = rc.MXPort
	}
	if rc.ReturnPath != "" {
		a, err := addr.Parse(rc.ReturnPath)
		if err != nil {
			return nil, &InputError{Field: "return-path", Err: err}
		}
		if a.NeedsSMTPUTF8() || strings.Contains(a.Local, "+") || strings.HasPrefix(a.String(), `"`) {
			return nil, &InputError{Field: "return-path", Err: ErrReturnPath}
		}
		s.ReturnPath = a.String()
	}
	out := &Routing{Settings: s}
	if len(rc.Relays) > 0 {
		if out.Relays, err = ParseRelays(rc.Relays, rc.PasswordEnv, rc.PasswordFile, env); err != nil {
			return nil, err
		}
		s.Relays, s.RelayPasswordInURL = out.Relays.redacted, out.Relays.inURL
		if err := out.Relays.fromSettings(rc.RelayPasswordSettings, env); err != nil {
			return nil, err
		}
		if len(rc.RelayPasswordSettings) > 0 {
			s.RelayPasswordSettings = rc.RelayPasswordSettings
		}
	}
	if rc.RelayCA != "" {
		if out.RootCAs, err = transport.LoadCAFile(rc.RelayCA); err != nil {
			return nil, &InputError{Field: "relay-ca", Err: err}
		}
	}
	return out, nil
}

// route is the route asked for, or the default.
func (rc RouteConfig) route(def route.Route) (route.Route, error) {
	if rc.Route == "" {
		if len(rc.Relays) > 0 {
			return route.Relay, nil
		}
		return def, nil
	}
	r, err := route.Parse(rc.Route)
	if err != nil {
		return "", &InputError{Field: "route", Err: err}
	}
	return r, nil
}

// defaultHELO is this machine's name, with a warning when it is not fully
// qualified: many receiving servers distrust a bare EHLO name (RFC 5321
// §4.1.1.1 asks for the client's FQDN).
func defaultHELO(env Env) string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	if !strings.Contains(strings.Trim(h, "."), ".") {
		env.Warn(fmt.Sprintf("this machine's name %q is not a fully qualified domain name; some servers refuse such clients: set --helo mail.yourdomain.example", h))
	}
	return h
}

// Doctor is the doctor's configuration for this route: the same relay
// accounts, TLS roots, DNS servers, EHLO name and MX settings a run uses.
// A sandbox has nothing to check; it is given the direct route's checks.
func (r *Routing) Doctor() doctor.Config {
	s := r.Settings
	cfg := doctor.Config{Route: s.Route, RootCAs: r.RootCAs, DNS: s.DNS, HELO: s.HELO,
		MXPort: s.MXPort, AllowLoopbackMX: s.AllowLoopbackMX}
	if s.Route != route.Relay {
		cfg.Route = route.Direct
	}
	if r.Relays != nil {
		cfg.Relays = r.Relays.accounts
	}
	if s.ConnectTimeout > 0 {
		cfg.Timeouts.Connect = min(s.ConnectTimeout, 10*time.Second)
	}
	return cfg
}

// transport builds the route's transport for one run at profile's speed.
// A hybrid route (direct with a fallback relay) hands to the relay what
// direct delivery cannot send for a local reason. A shared run (a worker
// of a fleet) keeps no idle session: a connection counts against the
// fleet's limits only while its session holds a slot, so one kept open
// between groups would be a connection nobody counts.
func (r *Routing) transport(st store.Store, p throttle.Profile, logger *slog.Logger, shared bool) (transport.Transport, error) {
	s := r.Settings
	idle := max(64, p.Connections)
	relayIdle := 0 // the relay's default
	if shared {
		idle, relayIdle = -1, -1
	}
	switch s.Route {
	case route.Sandbox:
		return &transport.Sandbox{Sink: st}, nil
	case route.Relay:
		return r.relay(p, logger, relayIdle)
	case route.Direct:
		res, err := mx.New(mx.Config{Servers: s.DNS, AllowLoopback: s.AllowLoopbackMX})
		if err != nil {
			return nil, err
		}
		direct, err := transport.NewDirect(transport.DirectConfig{
			Resolver: res, LocalName: s.HELO, Port: s.MXPort, Timeouts: s.Timeouts(),
			PerConnection: p.PerConnection, Logger: logger, LocalAddr: s.SourceIP,
			// Every session the profile allows may be kept for its
			// domain's next group, rather than closed and dialled again.
			MaxIdle: idle,
		})
		if err != nil {
			return nil, err
		}
		if r.Relays.Len() == 0 {
			return direct, nil
		}
		relay, err := r.relay(p, logger, relayIdle)
		if err != nil {
			return nil, err
		}
		return &transport.Hybrid{Direct: direct, Relay: relay, After: s.FallbackAfter, Logger: logger}, nil
	default:
		return nil, fmt.Errorf("%w %q (use sandbox, relay or direct)", route.ErrUnknown, s.Route)
	}
}

func (r *Routing) relay(p throttle.Profile, logger *slog.Logger, maxIdle int) (*transport.Relay, error) {
	return transport.NewRelay(transport.RelayConfig{
		Accounts: r.Relays.accounts, LocalName: r.Settings.HELO, MaxConns: max(p.Connections, 1), MaxIdle: maxIdle,
		PerConnection: p.PerConnection, RootCAs: r.RootCAs, Logger: logger, Timeouts: r.Settings.Timeouts(),
	})
}

// ErrReturnPath is returned (in an *InputError) for a return path that
// cannot carry a VERP token: one whose local part has a "+" already (the
// token follows the last "+") or is not ASCII.
var ErrReturnPath = errors.New(`the return path must be an ASCII address without "+" in its local part (e.g. bounces@example.com)`)

// ErrNeedRelay is returned when a stored relay's password was typed in the
// URL (and so not stored) and no relay was given for this run.
var ErrNeedRelay = errors.New("the relay password was given in the URL and is not stored: give the same --relay again")

// ErrRelayNotApplicable is returned when relays are given for a run of a
// campaign whose route has none (the sandbox, or direct without a
// fallback relay).
var ErrRelayNotApplicable = errors.New("the campaign's route has no relay; --relay does not apply")

// RelaysApply reports whether relay accounts may be given for a run of c:
// its route is the relay, or direct with a fallback relay; else the error
// is ErrRelayNotApplicable.
func RelaysApply(c *store.Campaign) error {
	s, err := SettingsOf(c)
	if err != nil {
		return err
	}
	if s.Route != route.Relay && len(s.Relays) == 0 {
		return fmt.Errorf("%w (campaign %q uses the %s route)", ErrRelayNotApplicable, c.Name, s.Route)
	}
	return nil
}

// routing is a stored campaign's route ready to use: the relays given for
// this run (they carry passwords) or the stored ones, whose passwords come
// from their environment variable or file again.
func (s *Settings) routing(given *Relays, env Env) (*Routing, error) {
	out := &Routing{Settings: s, Relays: given}
	if given == nil {
		out.Relays = &Relays{}
		for i, raw := range s.Relays {
			if i < len(s.RelayPasswordInURL) && s.RelayPasswordInURL[i] {
				return nil, ErrNeedRelay
			}
			a, _, err := transport.ParseRelayURL(raw, env.Getenv, env.ReadFile)
			if err != nil {
				return nil, err
			}
			if i < len(s.RelayPasswordSettings) && s.RelayPasswordSettings[i] != "" {
				if a.Password, err = env.secretPassword(a, s.RelayPasswordSettings[i]); err != nil {
					return nil, err
				}
			}
			out.Relays.accounts = append(out.Relays.accounts, a)
		}
	}
	if s.RelayCA != "" {
		roots, err := transport.LoadCAFile(s.RelayCA)
		if err != nil {
			return nil, err
		}
		out.RootCAs = roots
	}
	return out, nil
}
