package campaign

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"mailout/internal/dkim"
	"mailout/internal/doctor"
	"mailout/internal/mx"
	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/render"
	"mailout/internal/route"
	"mailout/internal/scheduler"
	"mailout/internal/store"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// RunOptions are what one run of a stored campaign needs besides the
// campaign itself.
type RunOptions struct {
	Store    store.Store
	Campaign *store.Campaign
	// Relays, when not nil, replace the stored relay accounts (they carry
	// passwords, which are never stored).
	Relays []*transport.RelayAccount
	// RootCAs for the relay route (nil = system roots or the stored CA file).
	RootCAs *x509.CertPool
	Profile throttle.Profile
	Clock   throttle.Clock
	// Wait: how long to stay for deferred recipients.
	Wait time.Duration
	// Lock is taken before anything is sent (see FileLock); nil = no lock.
	Lock func(campaignID int64) (unlock func(), err error)
	// Getenv and ReadFile resolve password-env and password-file of stored
	// relays; default os.Getenv and os.ReadFile.
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
	Logger   *slog.Logger
	Progress func(scheduler.Progress)
	// Owner names this runner in leases.
	Owner string
	// Scheduler tuning (tests); zero values take the scheduler's defaults.
	RecordBatch int
	// NoDiagnosis skips the doctor when the campaign pauses.
	NoDiagnosis bool
}

// Result is the end of one run: the scheduler's, and the doctor's report
// when a fault of the route paused the campaign.
type Result struct {
	*scheduler.Result
	Diagnosis *doctor.Report
}

// ErrNeedRelay is returned when a stored relay's password was typed in the
// URL (and so not stored) and no relay was given for this run.
var ErrNeedRelay = errors.New("the relay password was given in the URL and is not stored: give the same --relay again")

// Run sends the campaign until it is done, deferred beyond Wait, paused or
// interrupted (ctx cancelled).
func Run(ctx context.Context, o RunOptions) (*Result, error) {
	c := o.Campaign
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.Clock == nil {
		o.Clock = throttle.RealClock()
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		o.Owner = host + ":" + strconv.Itoa(os.Getpid())
	}
	if c.Status == store.CampaignCancelled {
		return nil, fmt.Errorf("campaign %q was cancelled", c.Name)
	}
	settings, err := DecodeSettings(c.RouteConfig)
	if err != nil {
		return nil, err
	}
	tmpl, err := ParseTemplate(c)
	if err != nil {
		return nil, err
	}
	if settings.Route != route.Direct {
		// Per-domain shaping is for talking to the recipients' own
		// servers; a relay or the sandbox takes the whole list.
		o.Profile.DomainConnections, o.Profile.DomainRate = 0, 0
	}
	accounts, err := o.accounts(settings)
	if err != nil {
		return nil, err
	}
	roots, err := o.roots(settings)
	if err != nil {
		return nil, err
	}
	tr, err := o.transport(settings, accounts, roots)
	if err != nil {
		return nil, err
	}
	defer tr.Close()

	if o.Lock != nil {
		unlock, err := o.Lock(c.ID)
		if err != nil {
			return nil, err
		}
		defer unlock()
		// We hold the only lock: rows left "sending" belong to a run that
		// died. They go back to pending, flagged as possible duplicates.
		n, err := o.Store.ReleaseLeases(ctx, c.ID, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", scheduler.ErrStoreFailed, err)
		}
		if n > 0 {
			o.Logger.Warn("recipients of an interrupted run are sent again; they may receive the message twice",
				"campaign", c.Name, "possible_duplicates", n)
		}
	}
	if c.Status == store.CampaignPaused {
		// The user resumes after fixing what paused the campaign: the
		// recipients deferred for a fault on our side go now, not after
		// their backoff.
		var classes []string
		for _, cl := range outcome.LocalTemporary(settings.Route) {
			classes = append(classes, string(cl))
		}
		n, err := o.Store.DueNow(ctx, c.ID, classes, o.Clock.Now())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", scheduler.ErrStoreFailed, err)
		}
		if n > 0 {
			o.Logger.Info("recipients deferred for a local fault are due again", "campaign", c.Name, "recipients", n)
		}
	}
	if err := o.Store.SetCampaignStatus(ctx, c.ID, store.CampaignRunning, ""); err != nil {
		return nil, fmt.Errorf("%w: %w", scheduler.ErrStoreFailed, err)
	}
	idDomain := FromDomain(tmpl)
	salt := settings.MessageIDSalt
	var signer *dkim.Signer
	if settings.DKIM != nil {
		var warnings []string
		signer, warnings, err = settings.DKIM.LoadSigner(o.ReadFile, idDomain)
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			o.Logger.Warn("DKIM: "+w, "campaign", c.Name)
		}
	}
	renderFn := func(d *store.Delivery, buf *bytes.Buffer) (*transport.Message, error) {
		id := d.MessageID
		if id == "" {
			id = fmt.Sprintf("%s.%d@%s", salt, d.ID, idDomain)
		}
		m, err := tmpl.Render(render.Recipient{Email: d.Email, Fields: d.Fields}, id, buf)
		if err != nil {
			return nil, err
		}
		if signer != nil {
			if m.Data, err = signInPlace(signer, buf); err != nil {
				return nil, err
			}
		}
		return &transport.Message{
			DeliveryID: d.ID, CampaignID: c.ID, From: m.From, To: m.To, Domain: d.Domain,
			MessageID: m.MessageID, Data: m.Data, SMTPUTF8: needsUTF8(m.From) || needsUTF8(m.To),
			Attempt: d.Attempts,
		}, nil
	}
	policy := queue.Policy{RetryMin: c.RetryMin, MaxAge: c.MaxAge}
	breaker := scheduler.BreakerConfig{}
	if settings.Route == route.Direct {
		breaker.MinDomains = 2
	}
	res, err := scheduler.Run(ctx, scheduler.Config{
		Store: o.Store, Campaign: c, Transport: tr, Render: renderFn,
		Profile: o.Profile, Clock: o.Clock, Policy: policy, Owner: o.Owner,
		Wait: o.Wait, Logger: o.Logger, Progress: o.Progress, RecordBatch: o.RecordBatch,
		Breaker: breaker,
	})
	out := &Result{Result: res}
	if err != nil || res.Stop != scheduler.StopPaused || o.NoDiagnosis || !settings.Route.Sends() {
		return out, err
	}
	// Nothing gets out, or the account is refused: say why, as the
	// troubleshooting guide would, and keep the diagnosis with the campaign.
	bg := context.WithoutCancel(ctx)
	dcfg := doctor.Config{Route: settings.Route, Relays: accounts, RootCAs: roots, DNS: settings.DNS,
		HELO: settings.HELO, MXPort: settings.MXPort, AllowLoopbackMX: settings.AllowLoopbackMX,
		Timeouts: doctor.Timeouts{Connect: min(settings.ConnectTimeout, 10*time.Second)}}
	if settings.Route == route.Direct {
		domains, derr := o.Store.Domains(bg, c.ID)
		if derr == nil && len(domains) > 5 {
			domains = domains[:5]
		}
		dcfg.Domains = domains
		if len(accounts) > 0 && !localDirectFault(res.PauseResult) {
			dcfg.Route = route.Relay // the fallback relay's account was refused
		} else {
			dcfg.Relays = nil
		}
	}
	o.Logger.Info("diagnosing the route", "campaign", c.Name, "route", dcfg.Route)
	out.Diagnosis = doctor.Run(bg, dcfg)
	if err := o.Store.SetDiagnosis(bg, c.ID, out.Diagnosis.JSON()); err != nil {
		return out, fmt.Errorf("%w: %w", scheduler.ErrStoreFailed, err)
	}
	return out, nil
}

// localDirectFault: the pause came from the direct way itself (DNS or
// port 25), not from a fallback relay's account.
func localDirectFault(r *outcome.Result) bool {
	return r == nil || r.Kind != outcome.KindPermanentForRun
}

func needsUTF8(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// FromDomain is the domain of the message's From address, which render
// also puts right of generated Message-IDs.
func FromDomain(t *render.Template) string {
	_, d, _ := strings.Cut(t.NewMessageID(), "@")
	return d
}

// ParseTemplate parses a stored campaign's message.
func ParseTemplate(c *store.Campaign) (*render.Template, error) {
	src := render.Source{Text: c.Message.Template, TextName: c.Message.TemplateName,
		HTML: c.Message.HTML, HTMLName: c.Message.HTMLName}
	for _, a := range c.Message.Attachments {
		src.Attachments = append(src.Attachments, render.Attachment{Name: a.Name, ContentType: a.ContentType, Data: a.Data})
	}
	return render.Parse(src, render.Options{})
}

func (o *RunOptions) transport(s *Settings, accounts []*transport.RelayAccount, roots *x509.CertPool) (transport.Transport, error) {
	switch s.Route {
	case "", route.Sandbox:
		return &transport.Sandbox{Sink: o.Store}, nil
	case route.Relay:
		return o.relay(s, accounts, roots)
	case route.Direct:
		res, err := mx.New(mx.Config{Servers: s.DNS, AllowLoopback: s.AllowLoopbackMX})
		if err != nil {
			return nil, err
		}
		direct, err := transport.NewDirect(transport.DirectConfig{
			Resolver: res, LocalName: s.HELO, Port: s.MXPort, Timeouts: s.Timeouts(),
			PerConnection: o.Profile.PerConnection, Logger: o.Logger,
		})
		if err != nil {
			return nil, err
		}
		if len(accounts) == 0 {
			return direct, nil
		}
		relay, err := o.relay(s, accounts, roots)
		if err != nil {
			return nil, err
		}
		return &transport.Hybrid{Direct: direct, Relay: relay, After: s.FallbackAfter, Logger: o.Logger}, nil
	default:
		return nil, fmt.Errorf("route %q is not supported (use sandbox, relay or direct)", s.Route)
	}
}

// accounts are the relay accounts given for this run, or the stored ones
// (whose passwords come from the environment or a file again).
func (o *RunOptions) accounts(s *Settings) ([]*transport.RelayAccount, error) {
	if o.Relays != nil {
		return o.Relays, nil
	}
	var accounts []*transport.RelayAccount
	for i, raw := range s.Relays {
		if i < len(s.RelayPasswordInURL) && s.RelayPasswordInURL[i] {
			return nil, ErrNeedRelay
		}
		a, _, err := transport.ParseRelayURL(raw, o.Getenv, o.ReadFile)
		if err != nil {
			return nil, err
		}
		accounts = append(accounts, a)
	}
	return accounts, nil
}

// roots are the relay's TLS roots: given for this run, the stored CA file,
// or nil for the system's.
func (o *RunOptions) roots(s *Settings) (*x509.CertPool, error) {
	if o.RootCAs != nil || s.RelayCA == "" {
		return o.RootCAs, nil
	}
	return transport.LoadCAFile(s.RelayCA)
}

// relay builds the relay route.
func (o *RunOptions) relay(s *Settings, accounts []*transport.RelayAccount, roots *x509.CertPool) (*transport.Relay, error) {
	return transport.NewRelay(transport.RelayConfig{
		Accounts: accounts, LocalName: s.HELO, MaxConns: max(o.Profile.Connections, 1),
		PerConnection: o.Profile.PerConnection, RootCAs: roots, Logger: o.Logger, Timeouts: s.Timeouts(),
	})
}
