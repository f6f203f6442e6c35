package main

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/audience"
	"mailout/internal/campaign"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// sendFlags are the flags of `mailout send`.
type sendFlags struct {
	recipients string
	list       string
	message    string
	html       string
	attach     []string
	name       string
	maxAge     time.Duration
	retryMin   time.Duration
	returnPath string
	at         string
	detach     bool
	dkim       campaign.DKIMSettings
	caps       capFlags
	run        runFlags
}

func (a *app) sendCmd() *cobra.Command {
	var f sendFlags
	cmd := &cobra.Command{
		Use:   "send (--recipients FILE.csv | --list NAME) --message FILE [flags]",
		Short: "Import a list, create a campaign and send it",
		Long: `send imports the recipients (CSV with a header row and an "email" column;
every other column is a merge field) or takes the subscribers of a stored
list (--list NAME, see "mailout lists"), checks the message template by
rendering it for the first recipient, stores the campaign, and sends it.

Routes:
  sandbox (default)  every message is rendered and kept in the database;
                     see them with: mailout export CAMPAIGN DIR
  relay              through your provider's SMTP server:
                     --relay smtp://user:pass@smtp.example.com:587   (STARTTLS)
                     --relay smtps://user:pass@smtp.example.com:465  (implicit TLS)
                     --relay 'smtp://user@host:587?password-env=SMTP_PASS'
                     several --relay: tried in order, the next takes over
                     when one fails (credentials, relay denied, unreachable)
  direct             to each recipient domain's mail servers (MX), port 25:
                     --route direct [--dns 9.9.9.9] [--helo mail.example.com]
                     [--fallback-relay URL] for when port 25 or DNS is blocked

Signing: --dkim-key FILE [--dkim-selector S] [--dkim-domain D] signs every
message (DKIM, RFC 6376); "mailout dkim keygen" makes a key and prints the
DNS record to publish. The key file is read again by "mailout resume".

Test small and slow first: --profile slow. If nothing gets out, the campaign
pauses itself and says why; "mailout doctor" runs the same checks by hand.

It stays until every recipient is final or --wait runs out. Exit status:
0 all final, 3 some deferred (run "mailout resume"), 4 paused by a route
fault, 5 interrupted, 1 error, 2 usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.send(cmd.Context(), &f, cmd)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.recipients, "recipients", "", "CSV file of recipients (this or --list)")
	fl.StringVar(&f.list, "list", "", "send to the subscribers of this stored list (this or --recipients; see: mailout lists)")
	fl.StringVar(&f.message, "message", "", "message template: headers, blank line, text body (required)")
	fl.StringVar(&f.html, "html", "", "HTML body template (optional; a text part is derived when the message has no body)")
	fl.StringArrayVar(&f.attach, "attach", nil, "file to attach to every message (repeatable)")
	fl.StringVar(&f.name, "campaign", "", "campaign name (default: the list's file name and the time)")
	fl.DurationVar(&f.maxAge, "max-age", 72*time.Hour, "keep retrying temporary failures this long after the campaign starts")
	fl.DurationVar(&f.retryMin, "retry-min", 5*time.Minute, "first retry delay; later ones grow with jitter")
	fl.StringVar(&f.at, "at", "", `send later: create the campaign now and start it at this time (RFC 3339, or "2026-12-24 09:00" in local time); "mailout serve" on the same database starts it then, or "mailout resume" after it`)
	fl.BoolVar(&f.detach, "detach", false, `create the campaign and leave it running without sending it here: with a PostgreSQL database (--db postgres://…) the fleet's workers send it (mailout worker); follow it with "mailout report" and "mailout workers"`)
	fl.StringVar(&f.returnPath, "return-path", "", "bounce address, e.g. bounces@example.com: each message's envelope sender becomes bounces+TOKEN@example.com (VERP), read back with: mailout bounces fetch")
	fl.StringVar(&f.dkim.KeyFile, "dkim-key", "", "sign every message with this DKIM private key (PEM: RSA or Ed25519)")
	fl.StringVar(&f.dkim.Selector, "dkim-selector", "mailout", "DKIM selector: the key is published at SELECTOR._domainkey.DOMAIN")
	fl.StringVar(&f.dkim.Domain, "dkim-domain", "", "DKIM signing domain (d=); default: the From address's domain")
	f.caps.register(fl)
	f.run.register(cmd, true)
	_ = cmd.MarkFlagRequired("message")
	return cmd
}

func (a *app) send(ctx context.Context, f *sendFlags, cmd *cobra.Command) error {
	if (f.recipients == "") == (f.list == "") {
		return usageErr("give the recipients with exactly one of --recipients FILE.csv and --list NAME")
	}
	if f.maxAge <= 0 || f.retryMin <= 0 {
		return usageErr("--max-age and --retry-min must be positive")
	}
	if err := f.caps.check(); err != nil {
		return err
	}
	for _, d := range f.run.timeouts {
		if d <= 0 {
			return usageErr("--connect-timeout, --command-timeout and --data-timeout must be positive")
		}
	}
	rt, err := a.routing(&f.run.routeFlags, campaign.RouteConfig{
		Relays: f.run.fallback, FallbackAfter: f.run.fallbackAfter,
		ConnectTimeout: f.run.timeouts[0], CommandTimeout: f.run.timeouts[1], DataTimeout: f.run.timeouts[2],
		ReturnPath: f.returnPath,
	}, route.Sandbox, route.Sandbox, route.Relay, route.Direct)
	if err != nil {
		return err
	}
	if f.detach && slices.Contains(rt.Settings.RelayPasswordInURL, true) {
		return usageErr("--detach: a password typed in the --relay URL is never stored, so the process that sends the campaign later cannot read it; give it with --relay-password-env or --relay-password-file (read again where the campaign is sent)")
	}
	profile, err := f.run.routeProfile(cmd, rt.Route())
	if err != nil {
		return err
	}
	var startAt time.Time
	if f.at != "" {
		if startAt, err = campaign.ParseStartAt(f.at, time.Now()); err != nil {
			return usageErr("--at: %v", err)
		}
	}
	msg, err := readMessage(f)
	if err != nil {
		return err
	}
	name := f.name
	if name == "" {
		base := f.list
		if f.recipients != "" {
			base = strings.TrimSuffix(filepath.Base(f.recipients), filepath.Ext(f.recipients))
		}
		name = base + "-" + time.Now().Format("20060102-150405")
	}
	nc := campaign.NewCampaign{Name: name, Message: msg, Routing: rt, Profile: profile, MaxAge: f.maxAge, RetryMin: f.retryMin,
		OneClick: f.run.oneClick(), StartAt: startAt}
	if f.dkim.KeyFile != "" {
		nc.DKIM = &f.dkim
	} else if f.dkim.Domain != "" {
		return usageErr("--dkim-domain needs --dkim-key")
	}
	// Everything is checked before the database is opened: a refused
	// command leaves no database behind.
	draft, err := nc.Check(a.env())
	var ie *campaign.InputError
	if errors.As(err, &ie) {
		return inputErr(err)
	}
	if err != nil {
		return &exitErr{code: exitError, err: err}
	}
	var c *store.Campaign
	if f.list != "" {
		// The list is in an existing database: a mistyped --db is refused
		// rather than created empty.
		svc, err := a.openService(ctx, false)
		if err != nil {
			return err
		}
		defer svc.Close()
		aud := audience.New(svc.Store())
		l, err := a.findList(ctx, aud, f.list)
		if err != nil {
			return err
		}
		label := fmt.Sprintf("list %q", l.Name)
		if c, err = a.importList(ctx, svc, draft, name, label, label, aud.Rows(ctx, l.ID), &recipient.Stats{}); err != nil {
			return err
		}
		return a.runOrSchedule(ctx, svc, c, rt.Relays, profile, f)
	}
	file, err := os.Open(f.recipients)
	if err != nil {
		return &exitErr{code: exitUsage, err: fmt.Errorf("recipients: %w", err)}
	}
	defer file.Close()

	svc, err := a.openService(ctx, true)
	if err != nil {
		return err
	}
	defer svc.Close()
	var stats recipient.Stats
	c, err = a.importList(ctx, svc, draft, name, file.Name(), filepath.Base(file.Name()), recipient.Rows(ctx, file, f.caps.listOptions(), &stats), &stats)
	if err != nil {
		return err
	}
	return a.runOrSchedule(ctx, svc, c, rt.Relays, profile, f)
}

// runOrSchedule sends a new campaign, or, when it has a start time, leaves
// it stored and says what starts it.
func (a *app) runOrSchedule(ctx context.Context, svc *campaign.Service, c *store.Campaign, relays *campaign.Relays, profile throttle.Profile, sf *sendFlags) error {
	if sf.detach {
		return a.detached(c)
	}
	f := sf.run
	if c.StartAt.IsZero() {
		return a.runCampaign(ctx, svc, c, relays, profile, f)
	}
	fmt.Fprintf(a.stdout, "Campaign %q is scheduled for %s; nothing was sent.\n"+
		"\"mailout serve\" running on this database (%s) starts it then;\n"+
		"or, after that time, run: mailout resume %s\n",
		c.Name, c.StartAt.Local().Format(time.DateTime), a.dbName(), quoteArg(c.Name))
	return nil
}

// readMessage reads the message, HTML and attachment files within the
// caps; a file that cannot be opened is a usage error, one that is not a
// regular file or is over its cap stops with the flag that raises it.
func readMessage(f *sendFlags) (*store.Message, error) {
	m, err := campaign.ReadMessageFiles(f.message, f.html, f.attach, f.caps.fileLimits())
	if errors.Is(err, campaign.ErrNotRegular) || errors.Is(err, campaign.ErrFileTooLarge) {
		return nil, &exitErr{code: exitError, err: fmt.Errorf("%w%s", err, raise(err))}
	}
	if err != nil {
		return nil, &exitErr{code: exitUsage, err: err}
	}
	return m, nil
}

// importList creates the campaign from rows (a CSV file's at path, shown
// as label; or a stored list's, path and label naming it), streamed into
// the store in one transaction, and prints the rejected rows (the first
// 20) with their line numbers and the tally (stats, which rows keeps up
// to date).
func (a *app) importList(ctx context.Context, svc *campaign.Service, draft *campaign.Draft, name, path, label string,
	rows iter.Seq2[*recipient.Recipient, error], stats *recipient.Stats) (*store.Campaign, error) {
	var badCount int
	c, imported, err := svc.Create(ctx, draft, rows, func(e recipient.RowError) {
		if badCount++; badCount <= 20 {
			fmt.Fprintf(a.stderr, "%s:%d: %s%s\n", label, e.Line, e.Reason, raise(e))
		}
	})
	if badCount > 20 {
		fmt.Fprintf(a.stderr, "... and %d more rejected rows\n", badCount-20)
	}
	var fe *recipient.FileError
	switch {
	case err == nil:
	case errors.Is(err, store.ErrExists):
		return nil, &exitErr{code: exitUsage, err: fmt.Errorf("a campaign named %q exists already: pick another --campaign, or continue it with: mailout resume %s", name, name)}
	case errors.Is(err, campaign.ErrNoRecipients):
		return nil, &exitErr{code: exitError, err: fmt.Errorf("%s: no valid recipient (%d rows rejected)", path, badCount)}
	case errors.As(err, &fe):
		return nil, &exitErr{code: exitError, err: fmt.Errorf("nothing was imported or sent: %w", &listError{path: path, fe: fe})}
	default:
		return nil, &exitErr{code: exitError, err: fmt.Errorf("nothing was imported or sent: %w", err)}
	}
	fmt.Fprintf(a.stderr, "Campaign %q: %d recipients imported from %s", c.Name, imported, label)
	switch {
	case stats.Invalid+stats.Duplicates > 0:
		fmt.Fprintf(a.stderr, ", %d rows rejected (%d invalid, %d duplicates)", badCount, stats.Invalid, stats.Duplicates)
	case badCount > 0:
		fmt.Fprintf(a.stderr, ", %d rows rejected", badCount)
	}
	fmt.Fprintln(a.stderr)
	return c, nil
}

// detached says who sends a campaign send --detach stored as running:
// the workers of a PostgreSQL database, or, for a SQLite one, serve when
// it starts (nothing sends it before).
func (a *app) detached(c *store.Campaign) error {
	when := "now"
	if !c.StartAt.IsZero() {
		when = "at " + c.StartAt.Local().Format(time.DateTime)
	}
	db := quoteArg(a.dbName())
	if campaign.IsDatabaseURL(a.dbPath) {
		fmt.Fprintf(a.stdout, "Campaign %q is stored as running; the workers of the database send it %s (start them with: mailout worker --db %s).\n"+
			"Follow it with: mailout report %s --db %s\n"+
			"and the workers with: mailout workers --db %s\n",
			c.Name, when, db, quoteArg(c.Name), db, db)
		return nil
	}
	fmt.Fprintf(a.stdout, "Campaign %q is stored as running, but nothing sends it yet: a SQLite database is sent by one process.\n"+
		"\"mailout serve\" on this database (%s) sends it when it starts; or run: mailout resume %s\n",
		c.Name, a.dbPath, quoteArg(c.Name))
	return nil
}
