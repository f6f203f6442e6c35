package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/account"
	"mailout/internal/api"
	"mailout/internal/audience"
	"mailout/internal/campaign"
	"mailout/internal/metrics"
	"mailout/internal/recipient"
	"mailout/internal/secret"
	"mailout/internal/setting"
	"mailout/internal/store"
	"mailout/internal/web"
	"mailout/internal/worker"
)

// shutdownGrace is how long serve waits on SIGINT/SIGTERM for requests to
// end and for the campaigns it sends to pause after their messages in
// flight.
const shutdownGrace = 2 * time.Minute

// keyFileSuffix names the secret key file serve keeps beside the database
// when neither MAILOUT_SECRET_KEY nor --secret-key-file is given.
const keyFileSuffix = ".secret.key"

func (a *app) serveCmd() *cobra.Command {
	var (
		listen, keyFile string
		localWorker     bool
		caps            capFlags
		oneClick        campaign.OneClick
	)
	cmd := &cobra.Command{
		Use:   "serve [--listen 127.0.0.1:8025] [--db FILE|URL] [--secret-key-file FILE]",
		Short: "Run the web app: campaigns, lists, settings, the doctor, the sandbox inbox and the JSON API",
		Long: `serve runs mailout's web app on --listen (loopback by default) over the
database of --db, which it creates when it does not exist, and prints its
address. The first visit creates the administrator (or mailout admin
create does). The JSON API is served under /api/v1/ and the Prometheus
metrics at /metrics, both to a client with an API token (Authorization:
Bearer); /metrics also to a signed-in user.

The relay passwords of the settings page are encrypted with a secret key:
the value of MAILOUT_SECRET_KEY (base64), else the file --secret-key-file,
else the file beside the database (mailout.db.secret.key), which serve
creates with a new key, readable by its owner only, the first time. Back
it up with the database, kept apart from it: without it the stored relay
passwords cannot be read and must be typed again. With a PostgreSQL
database (--db postgres://…) there is no file beside it: set
MAILOUT_SECRET_KEY or give --secret-key-file.

Campaigns started from the web are sent by this process; campaigns stored
as running whose process died are resumed at start. Campaigns sent by
mailout send in another process are shown live and can be paused or
cancelled from the web.

The bounce mailbox of the settings page, when one is set, is read at start
and then every interval (5 minutes by default), as mailout bounces fetch
does; its password is encrypted with the same key.

With a PostgreSQL database (--db postgres://…) the campaigns are sent by
the fleet's workers: starting a campaign from the web stores it as
running for them, and serve runs one worker itself unless --worker=false
(see mailout worker and docs/fleet.md).

On SIGINT or SIGTERM the campaigns being sent pause once their messages in
flight are finished and recorded (resume them from the web or with
mailout resume), and the server stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := caps.check(); err != nil {
				return err
			}
			if !localWorker && !campaign.IsDatabaseURL(a.dbPath) {
				return usageErr("--worker=false needs a PostgreSQL database (--db postgres://…) with mailout worker processes: serve is the one process that sends the campaigns of a SQLite database")
			}
			return a.serve(cmd.Context(), listen, keyFile, caps.listOptions(), oneClick, localWorker)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8025", "address and port to listen on")
	cmd.Flags().StringVar(&keyFile, "secret-key-file", "", "file of the secret key that encrypts the stored relay passwords (default: beside the database)")
	cmd.Flags().StringVar(&oneClick.PublicURL, "public-url", "", "where this app is reached from the Internet (https://…): campaigns made on the compose page get one-click unsubscribe links under it (default: the public address stored on the settings page)")
	cmd.Flags().StringVar(&oneClick.Mailto, "unsubscribe-mailto", "", "with --public-url: an address List-Unsubscribe also names as mailto:")
	cmd.Flags().BoolVar(&localWorker, "worker", true, "with a PostgreSQL database: send the running campaigns in this process too, as one worker of the fleet (false: a pure front end; mailout worker processes send)")
	caps.registerList(cmd.Flags())
	return cmd
}

// serveKey finds the secret key: MAILOUT_SECRET_KEY, else the file
// given, else the file beside the database, created when missing (and
// then said where, and that it needs a backup). A PostgreSQL database has
// no file beside it: one of the first two is required.
func (a *app) serveKey(keyFile string) (*secret.Key, error) {
	if v := a.getenv(secret.EnvVar); v != "" {
		k, err := secret.Parse(v)
		if err != nil {
			return nil, usageErr("%s: %v", secret.EnvVar, err)
		}
		return k, nil
	}
	if keyFile != "" {
		k, err := secret.Load(keyFile)
		if err != nil {
			return nil, usageErr("--secret-key-file: %v", err)
		}
		return k, nil
	}
	if campaign.IsDatabaseURL(a.dbPath) {
		// A URL has no folder to keep a key file in, and the servers of a
		// fleet must all use one key.
		return nil, usageErr("with a PostgreSQL database (--db %s) serve needs the secret key that encrypts the stored relay passwords: set %s (32 random bytes, base64: head -c 32 /dev/urandom | base64) or give --secret-key-file FILE, the same key on every server of the database", a.dbName(), secret.EnvVar)
	}
	path := a.dbPath + keyFileSuffix
	k, created, err := secret.LoadOrCreate(path)
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Fprintf(a.stderr, "mailout serve: created the secret key file %s (readable by you only); back it up with the database, kept apart from it: without it the stored relay passwords are lost\n", path)
	} else {
		fmt.Fprintf(a.stderr, "mailout serve: secret key file %s; back it up with the database\n", path)
	}
	return k, nil
}

func (a *app) serve(ctx context.Context, listen, keyFile string, listCaps recipient.Options, oneClick campaign.OneClick, localWorker bool) error {
	oneClick, err := oneClick.Check()
	if err != nil {
		return inputErr(err)
	}
	key, err := a.serveKey(keyFile)
	if err != nil {
		return err
	}
	// Campaigns with a stored relay account take its password from the
	// settings, sealed with key, at every run and resume.
	env := a.env()
	var st store.Store
	env.Secret = func(name string) (string, error) { return setting.Secrets(st, key)(name) }
	svc, err := a.openServiceEnv(ctx, true, env)
	if err != nil {
		return err
	}
	defer svc.Close()
	st = svc.Store()
	if _, err := setting.Load(ctx, st, key); err != nil {
		return fmt.Errorf("%w (start with the key the settings were saved with, or type the relay passwords again after removing them)", err)
	}
	accounts := account.New(st, account.Options{})
	if _, err := accounts.DeleteExpiredSessions(ctx); err != nil {
		return err
	}
	lists := audience.New(st)
	m := metrics.New(svc)
	defer m.Close()

	// Runs outlive the signal: Shutdown pauses them cleanly.
	runner := web.NewRunner(context.WithoutCancel(ctx), svc, a.logger)
	fleet := worker.IsFleet(svc)
	// The workers send a PostgreSQL database's campaigns, the runner
	// stores them as running for them.
	runner.Fleet = fleet
	workerDone := make(chan struct{})
	if fleet && localWorker {
		host, _ := os.Hostname()
		go func() {
			defer close(workerDone)
			_ = worker.Run(ctx, worker.Config{Service: svc, ID: svc.Owner(), Host: host, PID: os.Getpid(),
				Logger: a.logger, Profile: campaignProfile})
		}()
		fmt.Fprintf(a.stderr, "mailout serve: sending the running campaigns as worker %s\n", svc.Owner())
	} else {
		close(workerDone)
	}
	apiRuns, stopAPIRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAPIRuns()
	var apiWG sync.WaitGroup
	limits := api.DefaultLimits()
	limits.List = listCaps
	apiHandler := api.New(api.Config{Campaigns: svc, Lists: lists, Tokens: accounts, SecretKey: key,
		Limits: limits, Context: apiRuns, Runs: &apiWG, Logger: a.logger, Fleet: fleet})
	// The bounce mailbox of the settings is read on a timer until serve
	// stops; its last read shows on the settings page.
	bounces := web.NewBounceFetcher(st, key, a.logger)
	h, err := web.New(web.Config{
		Campaigns: svc, Accounts: accounts, Runner: runner, Logger: a.logger,
		AccountErrors: web.AccountErrors{RateLimited: account.ErrRateLimited, AdminExists: account.ErrAdminExists},
		Audience:      lists, Import: web.ImportLimits{List: listCaps}, SecretKey: key,
		Tokens: accounts, TokenErrors: web.TokenErrors{BadName: account.ErrBadTokenName, NoToken: account.ErrNoToken},
		API: apiHandler, Metrics: m.Handler(), OneClick: oneClick, Bounces: bounces,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return usageErr("--listen %s: %v", listen, err)
	}
	n, err := runner.ResumeInterrupted(ctx)
	if err != nil {
		ln.Close()
		return err
	}
	if n > 0 {
		fmt.Fprintf(a.stderr, "mailout serve: resumed %d interrupted campaigns\n", n)
	}
	// Scheduled campaigns (send --at, the compose page's "Send at") start
	// when their time comes; the watch ends with the runner.
	scheduleTicker := time.NewTicker(web.ScheduleCheck)
	defer scheduleTicker.Stop()
	go runner.WatchScheduled(scheduleTicker.C)
	bounceCtx, stopBounces := context.WithCancel(context.WithoutCancel(ctx))
	bouncesDone := make(chan struct{})
	go func() { defer close(bouncesDone); bounces.Run(bounceCtx) }()
	// A read under way ends before the store closes.
	defer func() { stopBounces(); <-bouncesDone }()
	// Requests (the progress streams among them) end when serving ends.
	base, stopRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRequests()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base }}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(a.stdout, "mailout serve: http://%s/\n", ln.Addr())

	stopAPI := func(grace context.Context) error {
		stopAPIRuns()
		done := make(chan struct{})
		go func() { apiWG.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-grace.Done():
			return grace.Err()
		}
	}
	select {
	case err := <-served:
		_ = runner.Shutdown(context.Background())
		_ = stopAPI(context.Background())
		return err
	case <-ctx.Done():
	}
	grace, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// The runs stop starting messages first, before the web requests are
	// drained: a slow progress stream never delays the pause.
	runner.PauseAll(grace)
	fmt.Fprintln(a.stderr, "mailout serve: stopping; campaigns being sent pause after their messages in flight")
	stopRequests()
	herr := srv.Shutdown(grace)
	rerr := runner.Shutdown(grace)
	select {
	case <-workerDone: // its messages in flight finished and recorded
	case <-grace.Done():
	}
	aerr := stopAPI(grace)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return errors.Join(herr, rerr, aerr)
}
