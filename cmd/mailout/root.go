package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/store"
)

// Exit statuses, documented in README.md.
const (
	exitOK          = 0 // every recipient is final: delivered or failed with its reason
	exitError       = 1 // could not start, or a store failure
	exitUsage       = 2 // wrong flags or arguments
	exitDeferred    = 3 // some recipients are deferred (will be retried)
	exitPaused      = 4 // a fault of the route paused the campaign
	exitInterrupted = 5 // stopped by a signal; resume continues
)

// exitError carries an exit status through cobra.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitErr{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// app is what every command shares.
type app struct {
	dbPath   string
	logLevel string
	lang     string
	stdout   io.Writer
	stderr   io.Writer
	logger   *slog.Logger
	getenv   func(string) string
	// svc is the campaign service, once a command opened the database.
	svc *campaign.Service

	cpuProfile string
	profile    *os.File
}

// startProfile starts the CPU profile asked for with --cpuprofile.
func (a *app) startProfile() error {
	if a.cpuProfile == "" {
		return nil
	}
	f, err := os.Create(a.cpuProfile)
	if err != nil {
		return err
	}
	a.profile = f
	return pprof.StartCPUProfile(f)
}

func (a *app) stopProfile() {
	if a.profile != nil {
		pprof.StopCPUProfile()
		a.profile.Close()
		a.profile = nil
	}
}

func execute(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stdout, os.Stderr, os.Getenv)
}

// run is the whole command line program, for main and for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	a.stopProfile()
	if err == nil {
		return exitOK
	}
	var ee *exitErr
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(a.stderr, "mailout:", ee.err)
		}
		return ee.code
	}
	// Anything not marked as a usage error is a failure at run time:
	// exit status 2 is kept for mistakes in the command line.
	fmt.Fprintln(a.stderr, "mailout:", err)
	return exitError
}

// markUsageErrors makes cobra's own complaints about the command line
// (unknown flags or commands, wrong number of arguments) usage errors,
// through its hooks rather than by reading the text of its errors.
func markUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitErr{code: exitUsage, err: err}
	})
	// Without Args and RunE cobra answers an unknown command from Find,
	// before any hook; with them, the check below runs instead, and a bare
	// "mailout" shows the help.
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q (see: mailout --help)", args[0], cmd.CommandPath())
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if check := c.Args; check != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return &exitErr{code: exitUsage, err: err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "mailout",
		Short: "Send a personalised message to every recipient of a list",
		Long: `mailout sends one personalised message to every recipient of a CSV list —
through your provider's SMTP server (relay), directly to each recipient's
mail server (direct), or kept in a local sandbox — records every outcome,
retries what is temporary, and tells you why when mail does not get out.

Quick start (sandbox, nothing leaves the machine):
  mailout send --recipients examples/recipients.csv --message examples/message.txt

When nothing gets out:
  mailout doctor --relay smtp://user@smtp.example.com:587 --relay-password-env SMTP_PASSWORD
  mailout doctor --route direct`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.applyOptions(cmd); err != nil {
				return err
			}
			// After the config file and environment had their say, so a
			// flag set there counts as given.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return &exitErr{code: exitUsage, err: err}
			}
			if err := a.startProfile(); err != nil {
				return err
			}
			return a.setup()
		},
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "configuration file of name = value lines, one per flag (env MAILOUT_CONFIG); every flag can also be set as MAILOUT_FLAG_NAME")
	pf.StringVar(&a.dbPath, "db", "mailout.db", "SQLite database file, or a postgres:// URL of a PostgreSQL database")
	pf.StringVar(&a.logLevel, "log-level", "warn", "log level: debug, info, warn, error (logs go to stderr)")
	pf.StringVar(&a.cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) to this file")
	_ = pf.MarkHidden("cpuprofile")
	pf.StringVar(&a.lang, "lang", a.defaultLang(), "language of advice texts, en or es; the default follows LC_ALL, LC_MESSAGES or LANG")
	root.AddCommand(a.sendCmd(), a.resumeCmd(), a.retryCmd(), a.reportCmd(), a.campaignsCmd(), a.exportCmd())
	root.AddCommand(a.doctorCmd(), a.sinkCmd(), a.dkimCmd(), a.suppressionCmd(), a.listsCmd(), a.serveCmd())
	root.AddCommand(a.adminCmd(), a.tokenCmd(), a.pauseCmd(), a.cancelCmd(), a.bouncesCmd())
	root.AddCommand(a.workerCmd(), a.workersCmd())
	markUsageErrors(root)
	return root
}

func (a *app) setup() error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.logLevel)); err != nil {
		return usageErr("--log-level %q: use debug, info, warn or error", a.logLevel)
	}
	a.logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: lvl}))
	if a.lang != "en" && a.lang != "es" {
		return usageErr("--lang %q: use en or es", a.lang)
	}
	return nil
}

// defaultLang reads the locale the way POSIX does (LC_ALL, LC_MESSAGES, LANG).
func (a *app) defaultLang() string {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := a.getenv(k); v != "" {
			if strings.HasPrefix(strings.ToLower(v), "es") {
				return "es"
			}
			return "en"
		}
	}
	return "en"
}

// openStore opens the database of an existing deployment. A path that
// does not exist is refused rather than created: a typo in --db must not
// answer "no campaigns" from a new, empty database.
func (a *app) openStore(ctx context.Context) (store.Store, error) {
	svc, err := a.openService(ctx, false)
	if err != nil {
		return nil, err
	}
	return svc.Store(), nil
}

// createStore opens the database, creating it when it does not exist yet.
func (a *app) createStore(ctx context.Context) (store.Store, error) {
	svc, err := a.openService(ctx, true)
	if err != nil {
		return nil, err
	}
	return svc.Store(), nil
}

// openService opens the campaign service over the database (creating it
// when create is true: only send and suppression add/import do). Closing
// its store closes it.
func (a *app) openService(ctx context.Context, create bool) (*campaign.Service, error) {
	return a.openServiceEnv(ctx, create, a.env())
}

// openServiceEnv is openService with the service's Env.
func (a *app) openServiceEnv(ctx context.Context, create bool, env campaign.Env) (*campaign.Service, error) {
	return a.openServiceOptions(ctx, create, campaign.Options{Env: env, Logger: a.logger})
}

// openServiceOptions is openService with the service's Options.
func (a *app) openServiceOptions(ctx context.Context, create bool, o campaign.Options) (*campaign.Service, error) {
	svc, err := campaign.Open(ctx, a.dbPath, create, o)
	if errors.Is(err, campaign.ErrNoDatabase) {
		return nil, &exitErr{code: exitUsage, err: fmt.Errorf("database %s does not exist (check --db; mailout send creates it with the first campaign)", a.dbPath)}
	}
	if errors.Is(err, campaign.ErrUnreachable) {
		return nil, &exitErr{code: exitError, err: fmt.Errorf("%w\nIs PostgreSQL running on that host and port, and is the --db URL right (user, password, database name)?", err)}
	}
	if err != nil {
		return nil, err
	}
	a.svc = svc
	return svc, nil
}

// dbName names the database of --db in messages: the file, or the URL
// with its password replaced.
func (a *app) dbName() string { return campaign.DatabaseName(a.dbPath) }

// env is how the service reads relay passwords and tells warnings.
func (a *app) env() campaign.Env {
	return campaign.Env{Getenv: a.getenv, ReadFile: os.ReadFile, Warn: func(msg string) {
		fmt.Fprintln(a.stderr, "mailout: warning:", msg)
	}}
}

// staleReason says why a campaign stored as running has no process sending
// it (its lock is free: the run was killed or the machine stopped), or ""
// when it is not running or a runner holds the lock.
func (a *app) staleReason(c *store.Campaign) string {
	if a.svc == nil || !a.svc.Interrupted(c) {
		return ""
	}
	return "no runner: interrupted; mailout resume " + quoteArg(c.Name)
}

// openCampaign opens the store and finds the campaign by name; the caller
// closes the store.
func (a *app) openCampaign(ctx context.Context, name string) (store.Store, *store.Campaign, error) {
	st, err := a.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.findCampaign(ctx, st, name)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, c, nil
}

func (a *app) findCampaign(ctx context.Context, st store.Store, name string) (*store.Campaign, error) {
	c, err := st.CampaignByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &exitErr{code: exitUsage, err: fmt.Errorf("no campaign named %q in %s (see: mailout campaigns)", name, a.dbName())}
	}
	return c, err
}
