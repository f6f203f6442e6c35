package campaign

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"mailout/internal/dkim"
	"mailout/internal/doctor"
	fleetlimits "mailout/internal/fleet"
	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/render"
	"mailout/internal/route"
	"mailout/internal/scheduler"
	"mailout/internal/store"
	"mailout/internal/store/postgres"
	"mailout/internal/throttle"
	"mailout/internal/transport"
	"mailout/internal/unsubscribe"
	"mailout/internal/verp"
)

// RunOptions are what one run of a stored campaign needs besides the
// campaign itself.
type RunOptions struct {
	// Relays, when not nil, replace the stored relay accounts (they carry
	// passwords, which are never stored).
	Relays  *Relays
	Profile throttle.Profile
	Clock   throttle.Clock
	// Wait: how long to stay for deferred recipients.
	Wait time.Duration
	// Progress, when set, receives the run's counts as they change (as
	// does every Watch of the campaign).
	Progress func(Progress)
	// Scheduler tuning (tests); zero values take the scheduler's defaults.
	RecordBatch int
	// NoDiagnosis skips the doctor when the campaign pauses.
	NoDiagnosis bool
	// Shared: the workers of a fleet send the campaign at the same time
	// (the store must be a store.Fleet). The run takes no lock and takes
	// back only the leases that expired, at its start and every Lease/3;
	// it renews its own leases as often, and gives back at its end the
	// rows it could not record. It stores no status of its own when
	// stopped (a signal, the database lost); a breaker's pause is stored
	// by the first worker that trips, with its diagnosis, and every other
	// worker ends its run when it reads the paused status. A campaign
	// that is not running is not sent.
	Shared bool
	// Lease is how long claimed rows stay this run's without renewal;
	// default 10 minutes, or SharedLease for a shared run.
	Lease time.Duration
	// HELO and SourceIP, when set, are this process's own identity on
	// the direct route: its EHLO name and the source address of its
	// connections, instead of the campaign's HELO and the system's
	// choice of address.
	HELO     string
	SourceIP net.IP
}

// SharedLease is the default lease of a shared run: short, so the rows
// of a worker that died go to the others within a minute, and renewed
// every third of it while the run holds them.
const SharedLease = time.Minute

// ErrNotShared is returned by a shared run over a store that several
// processes cannot share (SQLite: one process sends a campaign).
var ErrNotShared = errors.New("a fleet of workers needs a shared (PostgreSQL) database")

// Progress is a campaign's counts during a run: one type for a progress
// bar, server-sent events and metrics.
type Progress struct {
	CampaignID int64
	scheduler.Progress
}

// Stop says why a run ended.
type Stop = scheduler.StopReason

// Why a run ended.
const (
	StopDone        = scheduler.StopDone        // every recipient is final
	StopDeferred    = scheduler.StopDeferred    // only deferred recipients remain, due after Wait
	StopInterrupted = scheduler.StopInterrupted // ctx was cancelled (a signal)
	StopPaused      = scheduler.StopPaused      // a fault of the route, or Pause
	// StopCancelled: Cancel ended the run; the campaign sends no more.
	StopCancelled Stop = "cancelled"
)

// ErrStoreFailed wraps a store error that stopped a run: nothing more is
// sent when its outcome cannot be recorded. A *RecordError matches it.
var ErrStoreFailed = scheduler.ErrStoreFailed

// RecordError is a run's failure to record results; see
// scheduler.RecordError.
type RecordError = scheduler.RecordError

// Result is the end of one run: the scheduler's, and the doctor's report
// when a fault of the route paused the campaign.
type Result struct {
	*scheduler.Result
	Diagnosis *doctor.Report
	// ScheduledFor is set when the run ended before the campaign's start
	// time (Stop is StopDeferred): nothing was sent.
	ScheduledFor time.Time
}

// Scheduled reports whether the campaign waits for its start time at now.
func Scheduled(c *store.Campaign, now time.Time) bool {
	return !c.StartAt.IsZero() && now.Before(c.StartAt)
}

// ErrCancelled is returned by Run for a cancelled campaign.
var ErrCancelled = errors.New("the campaign was cancelled")

// Run sends the campaign until it is done, deferred beyond Wait, paused
// (by a fault of the route, or Pause from another goroutine), cancelled
// (Cancel) or interrupted (ctx cancelled). In every case the messages in
// flight are finished and recorded first.
func (s *Service) Run(ctx context.Context, c *store.Campaign, o RunOptions) (*Result, error) {
	if o.Clock == nil {
		o.Clock = throttle.RealClock()
	}
	if c.Status == store.CampaignCancelled {
		return nil, fmt.Errorf("%w: %q", ErrCancelled, c.Name)
	}
	var fleet store.Fleet
	if o.Shared {
		var ok bool
		if fleet, ok = s.st.(store.Fleet); !ok {
			return nil, ErrNotShared
		}
		if o.Lease <= 0 {
			o.Lease = SharedLease
		}
		if c.Status != store.CampaignRunning {
			// A worker carries out running campaigns only: a pause or
			// a cancel is for every worker.
			return &Result{Result: &scheduler.Result{Stop: StopPaused, Reason: c.StatusReason}}, nil
		}
	}
	if Scheduled(c, o.Clock.Now()) {
		// Nothing is due before the start time (Claim hands out nothing
		// either): the run ends at once, deferred, and says until when.
		n, err := s.st.Counts(ctx, c.ID)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
		if c.Status == store.CampaignPaused {
			// A resume before the start time: it waits for its time
			// again, when serve starts it (or a later resume).
			if err := s.st.SetCampaignStatus(ctx, c.ID, store.CampaignRunning, ""); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrStoreFailed, err)
			}
		}
		return &Result{Result: &scheduler.Result{Stop: StopDeferred, Counts: n,
			Reason: "scheduled for " + c.StartAt.Local().Format(time.DateTime)}, ScheduledFor: c.StartAt}, nil
	}
	settings, err := SettingsOf(c)
	if err != nil {
		return nil, err
	}
	if o.Relays != nil {
		if err := RelaysApply(c); err != nil {
			return nil, err
		}
	}
	if o.HELO != "" {
		settings.HELO = o.HELO
	}
	settings.SourceIP = o.SourceIP
	tmpl, err := ParseTemplate(c)
	if err != nil {
		return nil, err
	}
	oneClick := settings.oneClick()
	var unsubKey *unsubscribe.Key
	if oneClick.PublicURL != "" {
		if unsubKey, err = s.UnsubscribeKey(ctx); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
	}
	if settings.Route != route.Direct {
		// Per-domain shaping is for talking to the recipients' own
		// servers; a relay or the sandbox takes the whole list.
		o.Profile.DomainConnections, o.Profile.DomainRate = 0, 0
	}
	rt, err := settings.routing(o.Relays, s.opt.Env)
	if err != nil {
		return nil, err
	}
	log := s.opt.Logger
	tr, err := rt.transport(s.st, o.Profile, log, o.Shared)
	if err != nil {
		return nil, err
	}
	defer tr.Close()

	if o.Shared && s.opt.SharedLock != nil {
		// Beside other workers; never beside a process that sends the
		// campaign alone (it takes back every lease as its own).
		unlock, err := s.opt.SharedLock(c.ID)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	if o.Shared {
		// Other workers send it too: only leases that ended are orphans.
		n, err := s.st.ReleaseLeases(ctx, c.ID, o.Clock.Now())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
		if n > 0 {
			log.Warn("recipients of a worker that stopped are sent again; they may receive the message twice",
				"campaign", c.Name, "possible_duplicates", n)
		}
	} else if s.opt.Lock != nil {
		unlock, err := s.opt.Lock(c.ID)
		if err != nil {
			return nil, err
		}
		defer unlock()
		// We hold the only lock: rows left "sending" belong to a run that
		// died. They go back to pending, flagged as possible duplicates.
		n, err := s.st.ReleaseLeases(ctx, c.ID, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
		if n > 0 {
			log.Warn("recipients of an interrupted run are sent again; they may receive the message twice",
				"campaign", c.Name, "possible_duplicates", n)
		}
	}
	runCtx, done, err := s.start(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	defer done()
	told, runningReason := toldBy(c)
	if c.Status == store.CampaignPaused && !o.Shared {
		// The user resumes after fixing what paused the campaign: the
		// recipients deferred for a fault on our side go now, not after
		// their backoff.
		n, err := s.st.DueNow(ctx, c.ID, outcome.LocalTemporary(settings.Route), o.Clock.Now())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
		if n > 0 {
			log.Info("recipients deferred for a local fault are due again", "campaign", c.Name, "recipients", n)
		}
	}
	if !o.Shared {
		if err := s.st.SetCampaignStatus(ctx, c.ID, store.CampaignRunning, runningReason); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
	}
	// Another process on the same database (the web app, or mailout send
	// beside it) pauses or cancels by storing the status: follow it.
	// It ends, and is waited for, before Run returns: nothing of the run
	// goes on behind its caller's back.
	followCtx, stopFollowing := context.WithCancel(runCtx)
	var following sync.WaitGroup
	following.Go(func() { s.followStatus(followCtx, c.ID, o.Shared) })
	if o.Shared {
		stop := func(cause error) {
			s.mu.Lock()
			r := s.runs[c.ID]
			s.mu.Unlock()
			if r != nil {
				r.cancel(cause)
			}
		}
		following.Go(func() { s.keepLeases(followCtx, fleet, c, o, stop) })
		defer func() {
			// Rows still held are those whose result could not be
			// recorded: the others take them now, as after a crash.
			n, err := fleet.ReleaseOwned(context.WithoutCancel(ctx), c.ID, s.opt.Owner, time.Now())
			if err != nil {
				log.Warn("the rows of this run are left to their lease's end", "campaign", c.Name, "err", err)
			} else if n > 0 {
				log.Warn("recipients whose result was not recorded are sent again by the fleet; they may receive the message twice",
					"campaign", c.Name, "possible_duplicates", n)
			}
		}()
	}
	defer func() {
		stopFollowing()
		following.Wait()
	}()
	idDomain := FromDomain(tmpl)
	salt := settings.MessageIDSalt
	var signer *dkim.Signer
	if settings.DKIM != nil {
		var warnings []string
		signer, warnings, err = settings.DKIM.LoadSigner(s.opt.Env.ReadFile, idDomain)
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			log.Warn("DKIM: "+w, "campaign", c.Name)
		}
	}
	var bounces *verp.Signer
	if settings.ReturnPath != "" {
		if bounces, err = verp.LoadOrCreate(ctx, s.st); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
	}
	renderFn := func(d *store.Delivery, buf *bytes.Buffer) (*transport.Message, error) {
		id := d.MessageID
		if id == "" {
			id = fmt.Sprintf("%s.%d@%s", salt, d.ID, idDomain)
		}
		rcpt := render.Recipient{Email: d.Email, Fields: d.Fields}
		if unsubKey != nil {
			rcpt.Unsubscribe = unsubscribe.URL(oneClick.PublicURL, unsubKey.Token(c.ID, d.ID))
			rcpt.UnsubscribeMailto = oneClick.Mailto
		}
		m, err := tmpl.Render(rcpt, id, buf)
		if err != nil {
			return nil, err
		}
		if signer != nil {
			if m.Data, err = signInPlace(signer, buf); err != nil {
				return nil, err
			}
		}
		if bounces != nil {
			// VERP: the envelope sender names this delivery and attempt, so
			// a bounce to it is matched without reading its text.
			m.From = bounces.Address(settings.ReturnPath, verp.Ref{CampaignID: c.ID, DeliveryID: d.ID, Attempt: d.Attempts})
		}
		return &transport.Message{
			DeliveryID: d.ID, CampaignID: c.ID, From: m.From, To: m.To, Domain: d.Domain,
			MessageID: m.MessageID, Data: m.Data, SMTPUTF8: needsUTF8(m.From) || needsUTF8(m.To),
			Attempt: d.Attempts,
		}, nil
	}
	policy := queue.Policy{RetryMin: c.RetryMin, MaxAge: c.MaxAge}
	breaker := scheduler.BreakerConfig{Told: told}
	var checkDNS func(context.Context) bool
	if settings.Route == route.Direct {
		breaker.MinDomains = 2
		checkDNS = func(ctx context.Context) bool { return s.dnsKnowsNone(ctx, c, *settings, tmpl.FromAddress()) }
	}
	var gate scheduler.Gate
	if pg, ok := s.st.(*postgres.DB); ok && o.Shared {
		// The profile's limits hold for the whole fleet: every worker
		// takes its connections and its rate from the same tables.
		g := fleetlimits.New(fleetlimits.Config{Pool: pg.Pool(), Campaign: c.ID, Profile: o.Profile, Owner: s.opt.Owner, Logger: log})
		defer g.Close()
		gate = g
	}
	// The last progress the run reported, to report it again when the
	// run's end changes the tally (missing domains requeued).
	var lastProgress scheduler.Progress
	report := s.progress(c.ID, o.Progress)
	progress := func(p scheduler.Progress) { lastProgress = p; report(p) }
	res, err := scheduler.Run(runCtx, scheduler.Config{
		Store: s.st, Campaign: c, Transport: tr, Render: renderFn,
		Profile: o.Profile, Clock: o.Clock, Policy: policy, Owner: s.opt.Owner,
		Wait: o.Wait, Logger: log, Progress: progress, RecordBatch: o.RecordBatch,
		Breaker: breaker, CheckDNS: checkDNS, Attempt: s.attempt(c.ID, settings.Route),
		Shared: o.Shared, Lease: o.Lease, Gate: gate,
	})
	out := &Result{Result: res}
	if err != nil {
		return out, err
	}
	// The scheduler pauses for a fault of the route (the breaker); a
	// pause by the user comes back as interrupted.
	tripped := res.Stop == StopPaused
	defer func() {
		s.emit(Event{CampaignID: c.ID, Route: settings.Route, Stop: res.Stop, Tripped: tripped})
	}()
	bg := context.WithoutCancel(ctx)
	if o.Shared && errors.Is(context.Cause(runCtx), errLeaseLost) {
		// Stopped before its leases ended: a database failure, which the
		// worker waits out before it runs the campaign again.
		return out, fmt.Errorf("%w: %w", ErrStoreFailed, errLeaseLost)
	}
	if o.Shared && res.Stop == StopInterrupted && ctx.Err() == nil {
		// The fleet's status stopped the run (followStatus), or Pause
		// or Cancel here, which stored it: say what it is, store nothing.
		res.Stop, res.Reason = StopPaused, ReasonPaused
		if cur, err := s.st.Campaign(bg, c.ID); err == nil {
			res.Reason = cur.StatusReason
			switch cur.Status {
			case store.CampaignCancelled:
				res.Stop = StopCancelled
			case store.CampaignDone:
				res.Stop = StopDone
			}
		}
		return out, nil
	}
	if o.Shared && res.Stop == StopPaused {
		// The breaker tripped here: the first worker to pause the
		// campaign diagnoses it; a later one finds it paused already.
		won, err := fleet.PauseRunning(bg, c.ID, res.Reason)
		if err != nil {
			return out, fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
		if !won {
			return out, nil
		}
	}
	if res.Stop == StopInterrupted && ctx.Err() == nil {
		// Pause or Cancel from another goroutine ended the run: say so,
		// over the scheduler's "interrupted".
		status, stop, reason := store.CampaignPaused, StopPaused, ReasonPaused
		if errors.Is(context.Cause(runCtx), errCancelRequested) {
			status, stop, reason = store.CampaignCancelled, StopCancelled, ReasonCancelled
		}
		res.Stop, res.Reason = stop, reason
		if err := s.st.SetCampaignStatus(bg, c.ID, status, reason); err != nil {
			return out, fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
		return out, nil
	}
	if res.Stop == StopPaused && res.PauseResult != nil && res.PauseResult.Class == outcome.DNSNXDomain {
		// The breaker found every recipient domain of the first attempts
		// missing: the DNS server is suspect, not the domains. Those
		// recipients were failed as they came; they go back to the queue
		// (an earlier run's true NXDOMAIN too, which the next run fails
		// again after one more lookup).
		n, err := s.st.Requeue(bg, c.ID, []outcome.Class{outcome.DNSNXDomain}, o.Clock.Now())
		if err != nil {
			return out, fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
		log.Info("recipients whose domain was reported missing are kept to send", "campaign", c.Name, "requeued", n)
		if counts, err := s.st.Counts(bg, c.ID); err == nil {
			res.Counts = counts
			report(lastProgress.WithCounts(counts))
		}
	}
	if res.Stop != StopPaused || o.NoDiagnosis || !settings.Route.Sends() {
		return out, nil
	}
	// Nothing gets out, or the account is refused: say why, as the
	// troubleshooting guide would, and keep the diagnosis with the campaign.
	dcfg := rt.Doctor()
	if settings.Route == route.Direct {
		domains, derr := s.st.Domains(bg, c.ID)
		if derr == nil && len(domains) > 5 {
			domains = domains[:5]
		}
		dcfg.Domains = domains
		if rt.Relays.Len() > 0 && !localDirectFault(res.PauseResult) {
			dcfg.Route = route.Relay // the fallback relay's account was refused
		} else {
			dcfg.Relays = nil
		}
	}
	if res.PauseResult != nil && res.PauseResult.Class == outcome.SenderUnauthenticated {
		// Receivers refuse the sender as unauthenticated: check what
		// they check (SPF, DKIM, DMARC, reverse DNS), not the network.
		sc := doctor.SenderConfig{From: tmpl.FromAddress(), ReturnPath: settings.ReturnPath, DKIM: signer}
		if sc.ReturnPath == "" {
			sc.ReturnPath = tmpl.EnvelopeFrom()
		}
		if err := sc.Check(); err != nil {
			// The addresses were checked when the campaign was made:
			// say why, and diagnose the route instead.
			log.Warn("the sender cannot be checked; diagnosing the route", "campaign", c.Name, "err", err)
		} else {
			log.Info("checking the sender", "campaign", c.Name, "from", sc.From)
			out.Diagnosis = doctor.CheckSender(bg, dcfg, sc)
		}
	}
	if out.Diagnosis == nil {
		log.Info("diagnosing the route", "campaign", c.Name, "route", dcfg.Route)
		out.Diagnosis = doctor.Run(bg, dcfg)
	}
	if err := s.st.SetDiagnosis(bg, c.ID, out.Diagnosis.JSON()); err != nil {
		return out, fmt.Errorf("%w: %w", ErrStoreFailed, err)
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

// ParseTemplate parses a stored campaign's message, with one-click
// unsubscribe when the campaign has a public URL.
func ParseTemplate(c *store.Campaign) (*render.Template, error) {
	settings, err := SettingsOf(c)
	if err != nil {
		return nil, err
	}
	return render.Parse(source(&c.Message), render.Options{OneClick: settings.PublicURL != ""})
}

func source(m *store.Message) render.Source {
	src := render.Source{Text: m.Template, TextName: m.TemplateName, HTML: m.HTML, HTMLName: m.HTMLName}
	for _, a := range m.Attachments {
		src.Attachments = append(src.Attachments, render.Attachment{Name: a.Name, ContentType: a.ContentType, Data: a.Data})
	}
	return src
}
