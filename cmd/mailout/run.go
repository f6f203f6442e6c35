package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/outcome"
	"mailout/internal/report"
	rt "mailout/internal/route"
	"mailout/internal/scheduler"
	"mailout/internal/store"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// runFlags are the sending flags shared by send, resume and retry.
type runFlags struct {
	route         string
	relays        []string
	relayCA       string
	passwordEnv   string
	passwordFile  string
	helo          string
	dns           []string
	allowLoopback bool
	mxPort        int
	fallback      []string
	fallbackAfter int
	timeouts      [3]time.Duration // connect, command, data
	profileName   string
	connections   int
	rate          float64
	perConnection int
	pauseEvery    int
	pause         time.Duration
	// direct route: per destination domain
	domainConnections int
	domainRate        float64
	wait              time.Duration
	json              bool
}

func (f *runFlags) register(cmd *cobra.Command, withRoute bool) {
	fl := cmd.Flags()
	if withRoute {
		fl.StringVar(&f.route, "route", "", "sandbox, relay or direct (default: relay when --relay is given, else sandbox)")
		fl.StringVar(&f.helo, "helo", "", "host name announced in EHLO (default: this machine's name)")
		fl.StringVar(&f.relayCA, "relay-ca", "", "PEM file of the CA that signed the relay's certificate (default: system roots)")
		fl.StringArrayVar(&f.dns, "dns", nil, "direct route: DNS server IP or IP:PORT to ask for MX records (repeatable; default: the system's)")
		fl.BoolVar(&f.allowLoopback, "allow-loopback-mx", false, "direct route, labs only: allow MX hosts on loopback and private addresses")
		fl.IntVar(&f.mxPort, "mx-port", 25, "direct route, labs only: the port of the MX hosts")
		_ = fl.MarkHidden("mx-port")
		fl.StringArrayVar(&f.fallback, "fallback-relay", nil, "direct route: relay URL to use when direct delivery fails for a local reason (port 25 or DNS blocked)")
		fl.IntVar(&f.fallbackAfter, "fallback-after", 0, "direct route with --fallback-relay: also hand a recipient to the relay after this many temporary failures")
		fl.DurationVar(&f.timeouts[0], "connect-timeout", 30*time.Second, "SMTP: time to establish a TCP connection")
		fl.DurationVar(&f.timeouts[1], "command-timeout", 5*time.Minute, "SMTP: time for each command's reply (RFC 5321 §4.5.3.2: 5 minutes)")
		fl.DurationVar(&f.timeouts[2], "data-timeout", 10*time.Minute, "SMTP: time for the reply to the end of a message (RFC 5321 §4.5.3.2.6: 10 minutes; shorter ones cause duplicates)")
	}
	fl.StringArrayVar(&f.relays, "relay", nil, "relay account URL, smtp://user:pass@host:587 or smtps://…:465 (repeatable: tried in order)")
	fl.StringVar(&f.passwordEnv, "relay-password-env", "", "environment variable holding the relay password (instead of the URL)")
	fl.StringVar(&f.passwordFile, "relay-password-file", "", "file holding the relay password (instead of the URL)")
	fl.StringVar(&f.profileName, "profile", "normal", "speed profile: slow, normal or fast (test with slow first; the sandbox route runs unthrottled unless a speed flag is given)")
	fl.IntVar(&f.connections, "connections", 0, "custom: simultaneous SMTP connections")
	fl.Float64Var(&f.rate, "rate", 0, "custom: messages per second overall (0 = no limit)")
	fl.IntVar(&f.perConnection, "per-connection", 0, "custom: messages per connection before reconnecting (0 = no limit)")
	fl.IntVar(&f.pauseEvery, "pause-every", 0, "custom: pause after this many messages…")
	fl.DurationVar(&f.pause, "pause", 0, "custom: …for this long")
	fl.IntVar(&f.domainConnections, "domain-connections", 0, "custom, direct route: simultaneous connections per recipient domain")
	fl.Float64Var(&f.domainRate, "domain-rate", 0, "custom, direct route: messages per minute per recipient domain (0 = no limit)")
	fl.DurationVar(&f.wait, "wait", 15*time.Minute, "stay this long for deferred recipients before exiting (0 = exit when nothing is due)")
	fl.BoolVar(&f.json, "json", false, "print the summary as one JSON object on stdout")
}

// profile is the named profile with the custom values given on top.
func (f *runFlags) profile(cmd *cobra.Command) (throttle.Profile, error) {
	p, err := throttle.Lookup(f.profileName)
	if err != nil {
		return p, usageErr("--profile: %v", err)
	}
	return f.custom(cmd, p)
}

// sandboxProfile is the speed of the sandbox route when no speed flag was
// given: nothing leaves the machine, so there is no rate, no pause and no
// session limit; the connections only bound how many messages are rendered
// and kept at once.
var sandboxProfile = throttle.Profile{Name: "sandbox", Connections: 4}

// speedFlags are the flags that choose a speed on purpose.
var speedFlags = []string{"profile", "connections", "rate", "per-connection", "pause-every", "pause", "domain-connections", "domain-rate"}

// routeProfile is the profile of a send on route: the named profile with
// the custom values on top, except that the sandbox runs unthrottled
// (sandboxProfile) unless a speed flag was given.
func (f *runFlags) routeProfile(cmd *cobra.Command, r rt.Route) (throttle.Profile, error) {
	if r == rt.Sandbox && !speedChanged(cmd) {
		return sandboxProfile, nil
	}
	return f.profile(cmd)
}

func speedChanged(cmd *cobra.Command) bool {
	for _, name := range speedFlags {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

// custom applies the custom speed flags that were given to p.
func (f *runFlags) custom(cmd *cobra.Command, p throttle.Profile) (throttle.Profile, error) {
	fl := cmd.Flags()
	if fl.Changed("connections") {
		p.Connections = f.connections
		p.DomainConnections = min(p.DomainConnections, p.Connections)
	}
	if fl.Changed("domain-connections") {
		p.DomainConnections = f.domainConnections
	}
	if fl.Changed("domain-rate") {
		p.DomainRate = f.domainRate
	}
	if fl.Changed("rate") {
		p.Rate = f.rate
	}
	if fl.Changed("per-connection") {
		p.PerConnection = f.perConnection
	}
	if fl.Changed("pause-every") {
		p.PauseEvery = f.pauseEvery
	}
	if fl.Changed("pause") {
		p.Pause = f.pause
	}
	if err := p.Validate(); err != nil {
		return p, usageErr("speed: %v", err)
	}
	return p, nil
}

// parseRelays reads the --relay URLs; settings (when not nil) gets their
// redacted, storable form.
func (f *runFlags) parseRelays(a *app, settings *campaign.Settings) ([]*transport.RelayAccount, error) {
	return a.parseRelayURLs(f.relays, f.passwordEnv, f.passwordFile, settings)
}

// parseRelayURLs parses relay URLs; an account with a user name and no
// password takes it from passwordEnv or passwordFile. settings (when not
// nil) gets the redacted, storable form of each. Passwords stay in the
// accounts and are never printed.
func (a *app) parseRelayURLs(urls []string, passwordEnv, passwordFile string, settings *campaign.Settings) ([]*transport.RelayAccount, error) {
	var out []*transport.RelayAccount
	for _, raw := range urls {
		acc, src, err := transport.ParseRelayURL(raw, a.getenv, os.ReadFile)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		if acc.Password == "" && acc.Username != "" {
			switch {
			case passwordEnv != "":
				if acc.Password = a.getenv(passwordEnv); acc.Password == "" {
					return nil, usageErr("--relay-password-env: %s is empty or not set", passwordEnv)
				}
				src.Env = passwordEnv
			case passwordFile != "":
				b, err := os.ReadFile(passwordFile)
				if err != nil {
					return nil, usageErr("--relay-password-file: %v", err)
				}
				acc.Password = trimNewline(string(b))
				src.File = passwordFile
			}
		}
		if acc.Insecure && acc.Password != "" {
			// The user asked for no TLS; say plainly what that costs.
			fmt.Fprintf(a.stderr, "mailout: warning: %s has no TLS: the password of %q crosses the network in clear text, readable by anyone on the path. Use smtp:// (STARTTLS) or smtps:// unless this is a lab.\n", acc, acc.Username)
		}
		if settings != nil {
			settings.Relays = append(settings.Relays, acc.Redacted(src.Env, src.File))
			settings.RelayPasswordInURL = append(settings.RelayPasswordInURL, src.InURL)
		}
		out = append(out, acc)
	}
	return out, nil
}

func trimNewline(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// runCampaign sends a stored campaign and prints the outcome; its error
// carries the exit status.
func (a *app) runCampaign(ctx context.Context, st store.Store, c *store.Campaign, relays []*transport.RelayAccount, profile throttle.Profile, f runFlags) error {
	prog := newProgress(a.stderr, c.Name)
	res, err := campaign.Run(ctx, campaign.RunOptions{
		Store: st, Campaign: c, Relays: relays, Profile: profile, Wait: f.wait,
		Lock: a.lock, Logger: a.logger, Progress: prog.update,
	})
	prog.finish()
	if err != nil {
		var ee *exitErr
		if errors.As(err, &ee) {
			return err
		}
		if errors.Is(err, campaign.ErrNeedRelay) {
			return usageErr("%v", err)
		}
		if errors.Is(err, scheduler.ErrStoreFailed) {
			return &exitErr{code: exitError, err: storeFailure(err, a.dbPath, c.Name)}
		}
		return &exitErr{code: exitError, err: err}
	}
	fresh, err := st.Campaign(context.WithoutCancel(ctx), c.ID)
	if err != nil {
		return &exitErr{code: exitError, err: err}
	}
	sum := report.NewSummary(fresh, res.Counts)
	if res.PauseResult != nil {
		rt := rt.Relay
		if fresh.Route != "" {
			rt = fresh.Route
		}
		sum.Advice = outcome.Advice(res.PauseResult.Class, rt, a.lang)
	}
	if res.Diagnosis != nil {
		sum.Diagnosis = res.Diagnosis.JSON()
		sum.Advice = res.Diagnosis.Advice(a.lang)
	}
	bg := context.WithoutCancel(ctx)
	if fresh.Route == "direct" {
		rows, err := report.Domains(func(fn func(*store.Delivery) error) error {
			return st.Deliveries(bg, c.ID, store.DeliveryFilter{}, fn)
		})
		if err != nil {
			return &exitErr{code: exitError, err: err}
		}
		sum.Domains = rows
	}
	if f.json {
		if err := sum.WriteJSON(a.stdout); err != nil {
			return err
		}
	} else {
		sum.WriteText(a.stdout)
		if len(sum.Domains) > 0 {
			fmt.Fprintln(a.stdout)
			_ = report.WriteDomains(a.stdout, sum.Domains, 20)
		}
		if res.Diagnosis != nil {
			fmt.Fprintln(a.stdout)
			res.Diagnosis.WriteText(a.stdout, a.lang)
		}
	}
	switch res.Stop {
	case scheduler.StopDone:
		if fresh.Route == "sandbox" && !f.json {
			fmt.Fprintf(a.stdout, "\nThe sandbox kept every message; nothing left this machine. Look at them with:\n  mailout export %s DIR     (one .eml file per recipient)\n  mailout report %s\n", quoteArg(c.Name), quoteArg(c.Name))
		}
		return nil
	case scheduler.StopDeferred:
		msg := fmt.Sprintf("%d recipients are deferred and will be retried", sum.Deferred+sum.Pending+sum.Sending)
		if sum.NextRetry != nil {
			msg += fmt.Sprintf(" (next at %s, until %s)", sum.NextRetry.Local().Format(time.DateTime), sum.Until.Local().Format(time.DateTime))
		}
		return &exitErr{code: exitDeferred, err: fmt.Errorf("%s; continue with: mailout resume %s", msg, quoteArg(c.Name))}
	case scheduler.StopPaused:
		return &exitErr{code: exitPaused, err: fmt.Errorf("campaign paused: %s. No recipient was marked failed for it; after fixing the cause continue with: mailout resume %s", res.Reason, quoteArg(c.Name))}
	default:
		return &exitErr{code: exitInterrupted, err: fmt.Errorf("interrupted; messages in flight were finished and recorded. Continue with: mailout resume %s", quoteArg(c.Name))}
	}
}

// storeFailure is what a person reads when the database failed during a
// run: nothing more was sent once an outcome could not be recorded, and
// rows left "sending" go back to pending, flagged as possible duplicates,
// on the next run.
func storeFailure(err error, dbPath, name string) error {
	fix := fmt.Sprintf("Fix the database (disk space, permissions, %s) and resume when fixed: mailout resume %s", dbPath, quoteArg(name))
	var re *scheduler.RecordError
	if !errors.As(err, &re) {
		return fmt.Errorf("%w. Sending stopped: nothing is sent that cannot be recorded. %s", err, fix)
	}
	msg := "; nothing more was sent (the messages in flight were finished"
	if re.Unrecorded > 0 {
		msg += fmt.Sprintf("; %d of them could not be recorded: resume sends to them again, flagged as possible duplicates", re.Unrecorded)
	}
	return fmt.Errorf("%w%s). %s", re, msg, fix)
}

// quoteArg quotes a campaign name for a command line a person can paste
// into a POSIX shell.
func quoteArg(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// storedProfile is the campaign's stored speed profile, with the speed
// flags given now on top. A sandbox campaign runs unthrottled unless a
// speed flag is given now.
func storedProfile(c *store.Campaign, f *runFlags, cmd *cobra.Command) (throttle.Profile, error) {
	if c.Route == "sandbox" && !speedChanged(cmd) {
		return sandboxProfile, nil
	}
	var p throttle.Profile
	if cmd.Flags().Changed("profile") || len(c.Profile) == 0 || json.Unmarshal(c.Profile, &p) != nil {
		return f.profile(cmd)
	}
	return f.custom(cmd, p)
}
