package web

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"mailout/internal/mailbox"
	"mailout/internal/secret"
	"mailout/internal/setting"
	"mailout/internal/store"
)

// BounceFetcher reads the bounce mailbox of the settings ("Bounce
// mailbox" on the settings page) on a timer, with the same code as
// `mailout bounces fetch` (mailbox.Fetch), and on demand ("Fetch now").
// serve runs its loop; the settings page shows the last result. The
// mailbox password comes from the sealed settings and appears in no log,
// page or error.
type BounceFetcher struct {
	st  store.Store
	key *secret.Key
	log *slog.Logger
	now func() time.Time

	// fetching makes fetches one at a time (the loop's and the button's).
	fetching sync.Mutex
	mu       sync.Mutex
	last     *BounceFetch
	// kick wakes the loop: the settings changed.
	kick chan struct{}
}

// BounceFetch is the result of one read of the mailbox.
type BounceFetch struct {
	At time.Time
	// Mailbox is the mailbox's URL, without password.
	Mailbox string
	Summary *mailbox.Summary
	// Err is why the read failed ("" when it did not).
	Err string
}

// NewBounceFetcher reads the mailbox of st's settings, opened with key.
func NewBounceFetcher(st store.Store, key *secret.Key, logger *slog.Logger) *BounceFetcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &BounceFetcher{st: st, key: key, log: logger, now: time.Now, kick: make(chan struct{}, 1)}
}

// config is the configured mailbox and its interval; nil when none.
func (f *BounceFetcher) config(ctx context.Context) (*setting.BounceMailbox, *mailbox.Config, error) {
	if f.key == nil {
		return nil, nil, nil
	}
	s, err := setting.Load(ctx, f.st, f.key)
	if err != nil || s.Bounces == nil {
		return nil, nil, err
	}
	c, err := s.MailboxConfig(ctx)
	return s.Bounces, c, err
}

// Fetch reads the mailbox once; nil when no mailbox is configured.
func (f *BounceFetcher) Fetch(ctx context.Context) *BounceFetch {
	f.fetching.Lock()
	defer f.fetching.Unlock()
	m, c, err := f.config(ctx)
	if m == nil && err == nil {
		return nil
	}
	res := &BounceFetch{At: f.now()}
	if m != nil {
		res.Mailbox = m.URL
	}
	if err == nil {
		res.Mailbox = c.String()
		res.Summary, err = mailbox.Fetch(ctx, c, f.st, f.log)
	}
	if err != nil {
		res.Err = err.Error()
		f.log.Warn("bounce mailbox: read failed", "mailbox", res.Mailbox, "err", err)
	} else {
		sum := res.Summary
		f.log.Info("bounce mailbox read", "mailbox", res.Mailbox, "read", sum.Read, "bounced", sum.Bounced,
			"complaints", sum.Complaints, "suppressed", sum.Suppressed, "delays", sum.Delays, "unchanged", sum.Unchanged, "review", sum.Review)
	}
	f.mu.Lock()
	f.last = res
	f.mu.Unlock()
	return res
}

// Last is the result of the last read; nil before the first.
func (f *BounceFetcher) Last() *BounceFetch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// Kick tells the loop the settings changed: it reads the mailbox at once
// and takes the new interval.
func (f *BounceFetcher) Kick() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run reads the mailbox at once, then every interval of the settings,
// until ctx ends. Without a configured mailbox it waits for a Kick,
// checking the settings again every DefaultBounceInterval.
func (f *BounceFetcher) Run(ctx context.Context) {
	for {
		wait := setting.DefaultBounceInterval
		if m, _, _ := f.config(ctx); m != nil {
			f.Fetch(ctx)
			wait = m.Interval()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-f.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// bounceForm is the settings page's "Bounce mailbox" as typed.
type bounceForm struct {
	URL, CAFile, Interval string
	HasPassword           bool
}

// bounceFetcher is Config.Bounces, or one without a loop (the button
// still reads the mailbox).
func (s *server) bounceFetcher() *BounceFetcher {
	s.bouncesOnce.Do(func() {
		s.bounces = s.cfg.Bounces
		if s.bounces == nil {
			s.bounces = NewBounceFetcher(s.cfg.Campaigns.Store(), s.cfg.SecretKey, s.log)
		}
	})
	return s.bounces
}

// saveBounces answers POST /settings/bounces: the mailbox's URL,
// password (empty keeps the stored one), CA file and interval; an empty
// URL removes the mailbox.
func (s *server) saveBounces(w http.ResponseWriter, r *http.Request) {
	st := s.loadSettings(w, r)
	if st == nil {
		return
	}
	f := bounceForm{URL: strings.TrimSpace(r.PostFormValue("url")), CAFile: strings.TrimSpace(r.PostFormValue("ca_file")),
		Interval: strings.TrimSpace(r.PostFormValue("interval"))}
	v := s.newSettingsView(r, st)
	v.Bounces = f
	if f.URL == "" {
		st.Bounces = nil
	} else {
		n, err := atoiField(f.Interval, "bounce_mailbox.interval_minutes")
		if err != nil {
			s.formError(w, r, v, err)
			return
		}
		st.Bounces = &setting.BounceMailbox{URL: f.URL, CAFile: f.CAFile, IntervalMinutes: n, Password: r.PostFormValue("password")}
	}
	if !s.saveOK(w, r, st, v) {
		return
	}
	s.bounceFetcher().Kick()
	http.Redirect(w, r, "/settings?done=bouncessaved#bounces-h", http.StatusSeeOther)
}

// fetchBounces answers POST /settings/bounces/fetch ("Fetch now"): one
// read, then the settings page with its result.
func (s *server) fetchBounces(w http.ResponseWriter, r *http.Request) {
	res := s.bounceFetcher().Fetch(r.Context())
	done := "fetched"
	if res == nil {
		done = "nomailbox"
	}
	http.Redirect(w, r, "/settings?done="+done+"#bounces-h", http.StatusSeeOther)
}
