package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/report"
	"mailout/internal/route"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// routeFlags are the route flags that send and doctor register alike
// (resume and retry take only the relay account flags), checked by one
// function, routing.
type routeFlags struct {
	purpose       flagPurpose
	route         string
	relays        []string
	passwordEnv   string
	passwordFile  string
	relayCA       string
	helo          string
	dns           []string
	allowLoopback bool
	mxPort        int
}

// flagPurpose is the command the route flags are registered for.
type flagPurpose int

const (
	forSend   flagPurpose = iota // send: every route, stored with the campaign
	forDoctor                    // doctor: the relay or direct route checked
	forRun                       // resume, retry: relay accounts again
)

func (f *routeFlags) register(cmd *cobra.Command, purpose flagPurpose) {
	fl := cmd.Flags()
	f.purpose = purpose
	switch purpose {
	case forSend:
		fl.StringVar(&f.route, "route", "", "sandbox, relay or direct (default: relay when --relay is given, else sandbox)")
	case forDoctor:
		fl.StringVar(&f.route, "route", "", "route to check: direct or relay (default: relay when --relay is given, else direct)")
	}
	fl.StringArrayVar(&f.relays, "relay", nil, "relay account URL, smtp://user:pass@host:587 or smtps://…:465 (repeatable: tried in order)")
	fl.StringVar(&f.passwordEnv, "relay-password-env", "", "environment variable holding the relay password (instead of the URL)")
	fl.StringVar(&f.passwordFile, "relay-password-file", "", "file holding the relay password (instead of the URL)")
	if purpose == forRun {
		return
	}
	fl.StringVar(&f.relayCA, "relay-ca", "", "PEM file of the CA that signed the relay's certificate (default: system roots)")
	fl.StringVar(&f.helo, "helo", "", "host name announced in EHLO (default: this machine's name)")
	fl.StringArrayVar(&f.dns, "dns", nil, "DNS server IP or IP:PORT to ask for MX records (repeatable; default: the system's)")
	fl.BoolVar(&f.allowLoopback, "allow-loopback-mx", false, "direct route, labs only: allow MX hosts on loopback and private addresses")
	fl.IntVar(&f.mxPort, "mx-port", 25, "direct route, labs only: the port of the MX hosts")
	_ = fl.MarkHidden("mx-port")
	if purpose == forDoctor {
		_ = fl.MarkHidden("allow-loopback-mx")
	}
}

// routing checks the route flags, for send and doctor alike: def is the
// route when none is named and no --relay is given, allowed the routes
// the command takes; rc brings the command's other route settings (send's
// fallback relay and timeouts). The route's values (URLs, passwords, CA
// file, DNS servers, EHLO name) are checked by the campaign service.
func (a *app) routing(f *routeFlags, rc campaign.RouteConfig, def route.Route, allowed ...route.Route) (*campaign.Routing, error) {
	r := def
	switch {
	case f.route != "":
		var err error
		if r, err = route.Parse(f.route); err != nil || !slices.Contains(allowed, r) {
			return nil, usageErr("--route %q: use %s", f.route, routeList(allowed))
		}
	case len(f.relays) > 0:
		r = route.Relay
	}
	fallback := len(rc.Relays) > 0
	switch {
	case r == route.Sandbox && len(f.relays) > 0:
		return nil, usageErr("--relay given with --route sandbox: drop one of them")
	case r == route.Relay && len(f.relays) == 0:
		return nil, usageErr("--route relay needs --relay smtp://user:password@host:587")
	case r == route.Direct && len(f.relays) > 0 && f.purpose == forSend:
		return nil, usageErr("--relay goes with --route relay; with --route direct use --fallback-relay")
	case r == route.Direct && len(f.relays) > 0:
		return nil, usageErr("--relay goes with --route relay")
	case r != route.Direct && (fallback || f.purpose == forSend && (len(f.dns) > 0 || f.allowLoopback)):
		return nil, usageErr("--dns, --allow-loopback-mx and --fallback-relay belong to --route direct")
	}
	rc.Route = string(r)
	if !fallback {
		rc.Relays = f.relays
	}
	rc.PasswordEnv, rc.PasswordFile, rc.RelayCA = f.passwordEnv, f.passwordFile, f.relayCA
	rc.HELO, rc.DNS, rc.AllowLoopbackMX, rc.MXPort = f.helo, f.dns, f.allowLoopback, f.mxPort
	rt, err := rc.Check(def, a.env())
	if err != nil {
		return nil, inputErr(err)
	}
	return rt, nil
}

// inputErr makes a setting the service refused a usage error naming the
// flag.
func inputErr(err error) error {
	var ie *campaign.InputError
	if !errors.As(err, &ie) {
		return err
	}
	if ie.Field == "" {
		return usageErr("%v", ie.Err)
	}
	return usageErr("--%s: %v", ie.Field, ie.Err)
}

// routeList is "sandbox, relay or direct".
func routeList(rs []route.Route) string {
	var s []string
	for _, r := range rs {
		s = append(s, string(r))
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// runFlags are the sending flags shared by send, resume and retry.
type runFlags struct {
	routeFlags
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
	// one-click unsubscribe
	publicURL   string
	unsubMailto string
}

func (f *runFlags) register(cmd *cobra.Command, withRoute bool) {
	fl := cmd.Flags()
	if withRoute {
		f.routeFlags.register(cmd, forSend)
		fl.StringArrayVar(&f.fallback, "fallback-relay", nil, "direct route: relay URL to use when direct delivery fails for a local reason (port 25 or DNS blocked)")
		fl.IntVar(&f.fallbackAfter, "fallback-after", 0, "direct route with --fallback-relay: also hand a recipient to the relay after this many temporary failures")
		fl.DurationVar(&f.timeouts[0], "connect-timeout", 30*time.Second, "SMTP: time to establish a TCP connection")
		fl.DurationVar(&f.timeouts[1], "command-timeout", 5*time.Minute, "SMTP: time for each command's reply (RFC 5321 §4.5.3.2: 5 minutes)")
		fl.DurationVar(&f.timeouts[2], "data-timeout", 10*time.Minute, "SMTP: time for the reply to the end of a message (RFC 5321 §4.5.3.2.6: 10 minutes; shorter ones cause duplicates)")
	} else {
		f.routeFlags.register(cmd, forRun)
	}
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
	fl.StringVar(&f.publicURL, "public-url", "", "one-click unsubscribe: where mailout serve is reached from the Internet (https://…); every message gets List-Unsubscribe links under it (docs/unsubscribe.md)")
	fl.StringVar(&f.unsubMailto, "unsubscribe-mailto", "", "with --public-url: an address List-Unsubscribe also names as mailto: (someone must read it)")
}

// oneClick is the one-click unsubscribe the flags ask for.
func (f *runFlags) oneClick() campaign.OneClick {
	return campaign.OneClick{PublicURL: f.publicURL, Mailto: f.unsubMailto}
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
func (f *runFlags) routeProfile(cmd *cobra.Command, r route.Route) (throttle.Profile, error) {
	if r == route.Sandbox && !speedChanged(cmd) {
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

// runCampaign sends a stored campaign and prints the outcome; its error
// carries the exit status.
func (a *app) runCampaign(ctx context.Context, svc *campaign.Service, c *store.Campaign, relays *campaign.Relays, profile throttle.Profile, f runFlags) error {
	prog := newProgress(a.stderr, c.Name)
	res, err := svc.Run(ctx, c, campaign.RunOptions{Relays: relays, Profile: profile, Wait: f.wait, Progress: prog.update})
	prog.finish()
	switch {
	case err == nil:
	case errors.Is(err, campaign.ErrNeedRelay):
		return usageErr("%v", err)
	case errors.Is(err, campaign.ErrRelayNotApplicable):
		return usageErr("campaign %q uses the %s route without a relay; --relay does not apply", c.Name, campaign.RouteOf(c))
	case errors.Is(err, campaign.ErrLocked):
		return &exitErr{code: exitError, err: fmt.Errorf("%w (wait for it to finish, or stop it first)", err)}
	case errors.Is(err, campaign.ErrStoreFailed):
		return &exitErr{code: exitError, err: storeFailure(err, a.dbName(), c.Name)}
	default:
		return &exitErr{code: exitError, err: err}
	}
	if !res.ScheduledFor.IsZero() {
		return &exitErr{code: exitDeferred, err: fmt.Errorf("campaign %q is scheduled for %s; nothing was sent. \"mailout serve\" on this database starts it then, or run \"mailout resume %s\" after that time",
			c.Name, res.ScheduledFor.Local().Format(time.DateTime), quoteArg(c.Name))}
	}
	sum, err := svc.Summary(context.WithoutCancel(ctx), c, res, a.lang)
	if err != nil {
		return &exitErr{code: exitError, err: err}
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
	case campaign.StopDone:
		if campaign.RouteOf(c) == route.Sandbox && !f.json {
			fmt.Fprintf(a.stdout, "\nThe sandbox kept every message; nothing left this machine. Look at them with:\n  mailout export %s DIR     (one .eml file per recipient)\n  mailout report %s\n", quoteArg(c.Name), quoteArg(c.Name))
		}
		return nil
	case campaign.StopDeferred:
		msg := fmt.Sprintf("%d recipients are deferred and will be retried", sum.Deferred+sum.Pending+sum.Sending)
		if sum.NextRetry != nil {
			msg += fmt.Sprintf(" (next at %s, until %s)", sum.NextRetry.Local().Format(time.DateTime), sum.Until.Local().Format(time.DateTime))
		}
		return &exitErr{code: exitDeferred, err: fmt.Errorf("%s; continue with: mailout resume %s", msg, quoteArg(c.Name))}
	case campaign.StopPaused:
		if res.Reason == campaign.ReasonPaused {
			return &exitErr{code: exitPaused, err: fmt.Errorf("campaign paused by the user; messages in flight were finished and recorded. Continue with: mailout resume %s", quoteArg(c.Name))}
		}
		return &exitErr{code: exitPaused, err: fmt.Errorf("campaign paused: %s. No recipient was marked failed for it; after fixing the cause continue with: mailout resume %s", res.Reason, quoteArg(c.Name))}
	case campaign.StopCancelled:
		return &exitErr{code: exitInterrupted, err: fmt.Errorf("campaign cancelled; messages in flight were finished and recorded")}
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
	var re *campaign.RecordError
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
	if campaign.RouteOf(c) == route.Sandbox && !speedChanged(cmd) {
		return sandboxProfile, nil
	}
	var p throttle.Profile
	if cmd.Flags().Changed("profile") || len(c.Profile) == 0 || json.Unmarshal(c.Profile, &p) != nil {
		return f.profile(cmd)
	}
	return f.custom(cmd, p)
}
