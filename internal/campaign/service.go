// Package campaign is the campaign service: the one engine every front end
// drives — the command line's send, resume and retry, and the web app and
// the fleet's workers after them. A front end parses its input and prints;
// everything else happens here.
//
// Follow one recipient through the service:
//
//   - Check, then Create: a route (RouteConfig.Check → Routing) and a
//     message (ReadMessageFiles, NewCampaign.Check → Draft) are checked
//     before any database is opened; then a list source (recipient.Rows:
//     CSV → validated rows) and the draft become a stored campaign in one
//     transaction; rejected rows go to a callback, and the template is
//     rendered for the first recipient before anything is stored.
//   - Run (Resume runs a stored campaign by id): the stored route settings
//     (Settings, route.Route) become a transport (transport.Relay, Direct,
//     Hybrid or Sandbox); the scheduler claims due recipients, renders and
//     signs each message (render, dkim), sends, and records outcomes
//     (outcome, store); a fault of the route pauses the campaign and the
//     doctor's diagnosis is stored with it.
//   - Pause, Cancel: from another goroutine (a web handler) while Run goes
//     on; the run finishes and records the messages in flight, then ends.
//   - Progress: counts from the scheduler, to the run's callback and to
//     every Watch of the campaign (a progress bar, server-sent events);
//     each attempt's outcome and reply latency, and the end of each run,
//     to every Observe of the service (metrics).
//   - Summary: the end of a run as a report.Summary a front end prints.
//
// One process sends a campaign at a time: Run holds the campaign's lock
// (FileLock beside a SQLite database, a session advisory lock in
// PostgreSQL), so rows a dead run left "sending"
// are known to be orphans and are sent again, flagged as possible
// duplicates. The workers of a fleet (a PostgreSQL store, store.Fleet)
// run campaigns shared instead (RunOptions.Shared): many at once, without
// a lock, each renewing the short leases of its rows and taking back only
// the leases that ended; a breaker's pause is stored once for the fleet.
package campaign

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/store"
	"mailout/internal/store/postgres"
	"mailout/internal/store/sqlite"
)

// Options configure a Service.
type Options struct {
	// Lock is taken before a campaign is sent and released after; nil =
	// no lock (one process, or tests). Open sets a FileLock beside the
	// database.
	Lock func(campaignID int64) (unlock func(), err error)
	// SharedLock is taken by a shared run (RunOptions.Shared) and
	// released after: any number of workers hold it at once, while Lock
	// fails (ErrLocked) and a shared run fails while Lock is held. nil =
	// none. Open sets the PostgreSQL database's shared advisory lock.
	SharedLock func(campaignID int64) (unlock func(), err error)
	// Runner reports whether some process holds the campaign's lock; nil
	// = unknown (Interrupted reports false).
	Runner func(campaignID int64) (bool, error)
	// Env resolves relay passwords and receives warnings.
	Env Env
	// Logger; nil discards.
	Logger *slog.Logger
	// Owner names this runner in leases; default host:pid.
	Owner string
	// Poll is how often a run reads its campaign's stored status (to
	// notice a Pause or Cancel by another process sharing the database)
	// and how often Watch reads the counts of a campaign running in
	// another process; default 1 s.
	Poll time.Duration
}

// Service runs campaigns stored in one store.
type Service struct {
	st   store.Store
	opt  Options
	mu   sync.Mutex
	runs map[int64]*activeRun
	// watchers of campaigns, whether running here or not yet
	watchers map[int64]map[int]*watcher
	// observers of every run (Observe)
	observers map[int]func(Event)
	nextID    int
}

// activeRun is a run going on in this process.
type activeRun struct {
	cancel context.CancelCauseFunc
}

// New returns a service over st, which it closes on Close.
func New(st store.Store, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Env = o.Env.withDefaults()
	if o.Owner == "" {
		// host:pid:random: a later process that gets the same pid is
		// another owner of leases, and another worker of a fleet.
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Owner = host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b)
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	return &Service{st: st, opt: o, runs: map[int64]*activeRun{}, watchers: map[int64]map[int]*watcher{},
		observers: map[int]func(Event){}}
}

// ErrNoDatabase is returned by Open when the database does not exist and
// create is false.
var ErrNoDatabase = errors.New("database does not exist")

// ErrUnreachable is returned by Open when the PostgreSQL server of a
// postgres:// URL cannot be reached or refuses the connection.
var ErrUnreachable = errors.New("cannot connect to the PostgreSQL database")

// Open opens the store that path names and returns a service over it.
//
// A postgres:// or postgresql:// URL opens the PostgreSQL store (create
// does not apply: the database is there or the connection fails,
// ErrUnreachable), whose campaigns are locked with a session advisory lock
// (postgres.DB.LockCampaign). Anything else is the file of a SQLite
// database (created when create is true, else ErrNoDatabase when missing)
// whose campaigns are locked with a file beside it
// (path.campaign-ID.lock). Options.Lock and Runner, when set, replace
// either lock. Errors name a URL without its password.
func Open(ctx context.Context, path string, create bool, o Options) (*Service, error) {
	if postgres.IsURL(path) {
		return openPostgres(ctx, path, o)
	}
	if !create {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoDatabase, path)
		}
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	lockPath := func(id int64) string { return fmt.Sprintf("%s.campaign-%d.lock", path, id) }
	if o.Lock == nil {
		o.Lock = func(id int64) (func(), error) { return FileLock(lockPath(id)) }
	}
	if o.Runner == nil {
		o.Runner = func(id int64) (bool, error) { return Runner(lockPath(id)) }
	}
	return New(st, o), nil
}

// IsDatabaseURL reports whether path, a --db value, names a PostgreSQL
// database (a postgres:// or postgresql:// URL) rather than a SQLite file.
func IsDatabaseURL(path string) bool { return postgres.IsURL(path) }

// DatabaseName names the database of path for messages: a SQLite file as
// it is, a URL with its password replaced.
func DatabaseName(path string) string {
	if postgres.IsURL(path) {
		return postgres.Redact(path)
	}
	return path
}

// openPostgres is Open of a postgres:// URL.
func openPostgres(ctx context.Context, url string, o Options) (*Service, error) {
	db, err := postgres.Open(ctx, url)
	if postgres.Unreachable(err) {
		return nil, fmt.Errorf("%w %s: %w", ErrUnreachable, postgres.Redact(url), err)
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", postgres.Redact(url), err)
	}
	if o.Lock == nil {
		o.Lock = func(id int64) (func(), error) {
			unlock, err := db.LockCampaign(context.Background(), id)
			if errors.Is(err, postgres.ErrCampaignLocked) {
				return nil, ErrLocked
			}
			if err != nil {
				return nil, fmt.Errorf("campaign lock: %w", err)
			}
			return unlock, nil
		}
	}
	if o.SharedLock == nil {
		o.SharedLock = func(id int64) (func(), error) {
			unlock, err := db.LockCampaignShared(context.Background(), id)
			if errors.Is(err, postgres.ErrCampaignLocked) {
				return nil, ErrLocked
			}
			if err != nil {
				return nil, fmt.Errorf("campaign lock: %w", err)
			}
			return unlock, nil
		}
	}
	if o.Runner == nil {
		o.Runner = func(id int64) (bool, error) { return db.CampaignRunning(context.Background(), id) }
	}
	return New(db, o), nil
}

// Store is the service's store, for front ends that read campaigns,
// deliveries and suppressions to show them.
func (s *Service) Store() store.Store { return s.st }

// Close closes the store.
func (s *Service) Close() error { return s.st.Close() }

// Campaign finds a campaign by name (store.ErrNotFound when there is none).
func (s *Service) Campaign(ctx context.Context, name string) (*store.Campaign, error) {
	return s.st.CampaignByName(ctx, name)
}

// Interrupted reports whether c is stored as running but no process
// holds its lock: the run was killed or its machine stopped, and rows left
// "sending" may have been sent.
func (s *Service) Interrupted(c *store.Campaign) bool {
	if c.Status != store.CampaignRunning || s.opt.Runner == nil {
		return false
	}
	running, err := s.opt.Runner(c.ID)
	return err == nil && !running
}

// Sending reports whether a process, this one or another, is sending the
// campaign now: a run of it goes on here, or some process holds its lock.
// A service without a Runner (New without one) knows only its own runs.
func (s *Service) Sending(id int64) (bool, error) {
	s.mu.Lock()
	here := s.runs[id] != nil
	s.mu.Unlock()
	if here || s.opt.Runner == nil {
		return here, nil
	}
	return s.opt.Runner(id)
}

// Requeue moves failed recipients of the campaign (of the given outcome
// classes, or all) back to pending, for a run after their cause was fixed.
// Suppressed recipients stay suppressed.
func (s *Service) Requeue(ctx context.Context, id int64, classes []outcome.Class) (int, error) {
	return s.st.Requeue(ctx, id, classes, time.Now())
}
