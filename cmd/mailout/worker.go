package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/route"
	"mailout/internal/secret"
	"mailout/internal/setting"
	"mailout/internal/store"
	"mailout/internal/throttle"
	"mailout/internal/worker"
)

// workerFlags are the flags of `mailout worker`.
type workerFlags struct {
	helo, sourceIP, profile, keyFile string
	maxCampaigns                     int
	lease, heartbeat, poll           time.Duration
}

func (a *app) workerCmd() *cobra.Command {
	var f workerFlags
	cmd := &cobra.Command{
		Use:   "worker --db postgres://… [--helo NAME] [--source-ip ADDR] [--profile NAME] [--max-campaigns N]",
		Short: "Send the running campaigns of a PostgreSQL database, with any number of other workers",
		Long: `worker is one sending process of a fleet: run it on as many machines as
you like against one PostgreSQL database (--db postgres://…). Each worker
carries out every campaign stored as running whose time has come, claiming
its own recipients under a short lease; a worker that dies loses its
leases within a minute and the others send its recipients. Create
campaigns with "mailout send --db postgres://… --detach" or the web app
("mailout serve --db postgres://…"); follow them with "mailout report"
and "mailout workers".

The speed is each campaign's stored profile (--profile replaces it for
this worker). --helo and --source-ip give this worker its own EHLO name and
source address on the direct route. Relay passwords of the settings page
are read with the secret key of serve: MAILOUT_SECRET_KEY or
--secret-key-file.

A SQLite database is sent by one process: mailout send, resume or serve.

On SIGINT or SIGTERM the worker finishes and records its messages in
flight, gives its other recipients back to the fleet, and stops; the
campaigns go on with the other workers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.worker(cmd.Context(), cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.helo, "helo", "", "this worker's EHLO name on the direct route (default: the campaign's)")
	fl.StringVar(&f.sourceIP, "source-ip", "", "this worker's source address on the direct route (an address of this machine)")
	fl.StringVar(&f.profile, "profile", "", "speed profile for every campaign this worker sends (default: each campaign's stored profile)")
	fl.IntVar(&f.maxCampaigns, "max-campaigns", 8, "most campaigns this worker sends at once")
	fl.StringVar(&f.keyFile, "secret-key-file", "", "file of the secret key that encrypts the stored relay passwords (or MAILOUT_SECRET_KEY)")
	fl.DurationVar(&f.lease, "lease", campaign.SharedLease, "how long a worker's claimed recipients stay its own without renewal")
	fl.DurationVar(&f.heartbeat, "heartbeat", 5*time.Second, "heartbeat interval; a worker is gone after three missed")
	fl.DurationVar(&f.poll, "poll", 2*time.Second, "how often the worker looks for running campaigns")
	for _, h := range []string{"lease", "heartbeat", "poll"} {
		_ = fl.MarkHidden(h)
	}
	return cmd
}

// errNeedPostgres: a fleet command was given a SQLite database.
func (a *app) needPostgres(cmd string) error {
	if campaign.IsDatabaseURL(a.dbPath) {
		return nil
	}
	return usageErr("mailout %s needs a PostgreSQL database (--db postgres://…); a SQLite database (%s) is sent by one process: mailout send, resume or serve", cmd, a.dbPath)
}

// openFleet opens the campaign service over the fleet's PostgreSQL
// database (its campaign locks included).
func (a *app) openFleet(ctx context.Context, o campaign.Options) (*campaign.Service, error) {
	if o.Env.Getenv == nil {
		o.Env = a.env()
	}
	if o.Logger == nil {
		o.Logger = a.logger
	}
	svc, err := a.openServiceOptions(ctx, false, o)
	if err != nil {
		return nil, err
	}
	if !worker.IsFleet(svc) {
		svc.Close()
		return nil, usageErr("--db %s is not a PostgreSQL database", a.dbName())
	}
	return svc, nil
}

// workerID is a lease owner name unique to this process: host:pid:random.
func workerID() (id, host string) {
	host, _ = os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b), host
}

func (a *app) worker(ctx context.Context, cmd *cobra.Command, f *workerFlags) error {
	if err := a.needPostgres("worker"); err != nil {
		return err
	}
	var sourceIP net.IP
	if f.sourceIP != "" {
		if sourceIP = net.ParseIP(f.sourceIP); sourceIP == nil {
			return usageErr("--source-ip %q is not an IP address", f.sourceIP)
		}
	}
	if f.helo != "" {
		if err := campaign.CheckHELO(f.helo); err != nil {
			return usageErr("--helo: %v", err)
		}
	}
	var override *throttle.Profile
	if f.profile != "" {
		p, err := throttle.Lookup(f.profile)
		if err != nil {
			return usageErr("--profile: %v", err)
		}
		override = &p
	}
	if f.lease < time.Second || f.heartbeat <= 0 || f.poll <= 0 {
		return usageErr("--lease must be at least 1s; --heartbeat and --poll positive")
	}
	var key *secret.Key
	if v := a.getenv(secret.EnvVar); v != "" {
		k, err := secret.Parse(v)
		if err != nil {
			return usageErr("%s: %v", secret.EnvVar, err)
		}
		key = k
	} else if f.keyFile != "" {
		k, err := secret.Load(f.keyFile)
		if err != nil {
			return usageErr("--secret-key-file: %v", err)
		}
		key = k
	}
	env := a.env()
	var st store.Store
	if key != nil {
		// The relay passwords of the settings page, as serve reads them.
		env.Secret = func(name string) (string, error) { return setting.Secrets(st, key)(name) }
	}
	id, host := workerID()
	svc, err := a.openFleet(ctx, campaign.Options{Env: env, Logger: a.logger, Owner: id})
	if err != nil {
		return err
	}
	defer svc.Close()
	st = svc.Store()
	fmt.Fprintf(a.stdout, "mailout worker %s: sending the running campaigns of %s\n", id, a.dbName())
	return worker.Run(ctx, worker.Config{
		Service: svc, ID: id, Host: host, PID: os.Getpid(),
		HELO: f.helo, SourceIP: sourceIP, MaxCampaigns: f.maxCampaigns,
		Lease: f.lease, Heartbeat: f.heartbeat, Poll: f.poll, Logger: a.logger,
		Profile: func(c *store.Campaign) throttle.Profile {
			if override != nil {
				return *override
			}
			return campaignProfile(c)
		},
	})
}

// campaignProfile is the campaign's stored speed (the sandbox runs
// unthrottled), as serve runs it.
func campaignProfile(c *store.Campaign) throttle.Profile {
	if campaign.RouteOf(c) == route.Sandbox {
		return sandboxProfile
	}
	var p throttle.Profile
	if len(c.Profile) == 0 || json.Unmarshal(c.Profile, &p) != nil || p.Validate() != nil {
		p, _ = throttle.Lookup("normal")
	}
	return p
}

func (a *app) workersCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "workers --db postgres://… [--json]",
		Short: "List the workers of a fleet: live ones with their campaigns, claimed recipients and rates, and gone ones",
		Long: `workers lists every worker that sent from the PostgreSQL database of
--db: its id (host:pid:random), host, start, last heartbeat, the campaigns
it runs, the recipients it holds (claimed, being sent) and its rate
(attempts per second over its last heartbeat interval). A worker that
stopped, or missed three heartbeats (it died, or lost the database), is
shown as gone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.needPostgres("workers"); err != nil {
				return err
			}
			svc, err := a.openFleet(cmd.Context(), campaign.Options{})
			if err != nil {
				return err
			}
			defer svc.Close()
			ws, err := worker.List(cmd.Context(), svc, time.Now())
			if err != nil {
				return err
			}
			return a.printWorkers(ws, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// workerJSON is one worker in `mailout workers --json`.
type workerJSON struct {
	ID          string    `json:"id"`
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	HELO        string    `json:"helo,omitempty"`
	SourceIP    string    `json:"source_ip,omitempty"`
	Started     time.Time `json:"started"`
	Heartbeat   time.Time `json:"heartbeat"`
	Campaigns   []int64   `json:"campaigns"`
	Claimed     int       `json:"claimed"`
	Sent        int64     `json:"sent"`
	Rate        float64   `json:"rate"`
	Gone        bool      `json:"gone"`
	StoppedAt   time.Time `json:"stopped_at,omitzero"`
	IntervalSec float64   `json:"heartbeat_interval_seconds"`
}

func (a *app) printWorkers(ws []worker.Info, asJSON bool) error {
	if asJSON {
		out := make([]workerJSON, 0, len(ws))
		for _, w := range ws {
			out = append(out, workerJSON{ID: w.ID, Host: w.Host, PID: w.PID, HELO: w.HELO, SourceIP: w.SourceIP,
				Started: w.StartedAt, Heartbeat: w.HeartbeatAt, Campaigns: w.Campaigns, Claimed: w.Claimed,
				Sent: w.Sent, Rate: w.Rate, Gone: w.Gone, StoppedAt: w.StoppedAt, IntervalSec: w.Interval.Seconds()})
		}
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(ws) == 0 {
		fmt.Fprintln(a.stdout, "No worker has run on this database (start one with: mailout worker --db …)")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOST\tSTARTED\tLAST HEARTBEAT\tCAMPAIGNS\tCLAIMED\tRATE/S\tSTATE")
	for _, w := range ws {
		state := "live"
		switch {
		case !w.StoppedAt.IsZero():
			state = "gone (stopped)"
		case w.Gone:
			state = "gone (no heartbeat)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%.1f\t%s\n", w.ID, w.Host, w.StartedAt.Local().Format(time.DateTime),
			w.HeartbeatAt.Local().Format(time.DateTime), len(w.Campaigns), w.Claimed, w.Rate, state)
	}
	return tw.Flush()
}
