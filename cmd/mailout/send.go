package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/mx"
	"mailout/internal/recipient"
	"mailout/internal/render"
	rt "mailout/internal/route"
	"mailout/internal/smtpclient"
	"mailout/internal/store"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// sendFlags are the flags of `mailout send`.
type sendFlags struct {
	recipients string
	message    string
	html       string
	attach     []string
	name       string
	maxAge     time.Duration
	retryMin   time.Duration
	dkim       campaign.DKIMSettings
	caps       capFlags
	run        runFlags
}

func (a *app) sendCmd() *cobra.Command {
	var f sendFlags
	cmd := &cobra.Command{
		Use:   "send --recipients FILE.csv --message FILE [flags]",
		Short: "Import a list, create a campaign and send it",
		Long: `send imports the recipients (CSV with a header row and an "email" column;
every other column is a merge field), checks the message template by
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
	fl.StringVar(&f.recipients, "recipients", "", "CSV file of recipients (required)")
	fl.StringVar(&f.message, "message", "", "message template: headers, blank line, text body (required)")
	fl.StringVar(&f.html, "html", "", "HTML body template (optional; a text part is derived when the message has no body)")
	fl.StringArrayVar(&f.attach, "attach", nil, "file to attach to every message (repeatable)")
	fl.StringVar(&f.name, "campaign", "", "campaign name (default: the list's file name and the time)")
	fl.DurationVar(&f.maxAge, "max-age", 72*time.Hour, "keep retrying temporary failures this long after the campaign starts")
	fl.DurationVar(&f.retryMin, "retry-min", 5*time.Minute, "first retry delay; later ones grow with jitter")
	fl.StringVar(&f.dkim.KeyFile, "dkim-key", "", "sign every message with this DKIM private key (PEM: RSA or Ed25519)")
	fl.StringVar(&f.dkim.Selector, "dkim-selector", "mailout", "DKIM selector: the key is published at SELECTOR._domainkey.DOMAIN")
	fl.StringVar(&f.dkim.Domain, "dkim-domain", "", "DKIM signing domain (d=); default: the From address's domain")
	f.caps.register(fl)
	f.run.register(cmd, true)
	_ = cmd.MarkFlagRequired("recipients")
	_ = cmd.MarkFlagRequired("message")
	return cmd
}

func (a *app) send(ctx context.Context, f *sendFlags, cmd *cobra.Command) error {
	if f.maxAge <= 0 || f.retryMin <= 0 {
		return usageErr("--max-age and --retry-min must be positive")
	}
	if err := f.caps.check(); err != nil {
		return err
	}
	route := f.run.route
	if route == "" {
		route = "sandbox"
		if len(f.run.relays) > 0 {
			route = "relay"
		}
	}
	profile, err := f.run.routeProfile(cmd, rt.Route(route))
	if err != nil {
		return err
	}
	settings := &campaign.Settings{Route: rt.Route(route), HELO: f.run.helo, RelayCA: f.run.relayCA, MessageIDSalt: campaign.NewSalt(),
		ConnectTimeout: f.run.timeouts[0], CommandTimeout: f.run.timeouts[1], DataTimeout: f.run.timeouts[2]}
	for _, d := range f.run.timeouts {
		if d <= 0 {
			return usageErr("--connect-timeout, --command-timeout and --data-timeout must be positive")
		}
	}
	if route != "sandbox" && settings.HELO == "" {
		settings.HELO = a.defaultHELO()
	}
	if route != "sandbox" {
		if _, err := smtpclient.EHLOName(settings.HELO); err != nil {
			return usageErr("--helo: %v", err)
		}
	}
	var relays []*transport.RelayAccount
	if route != "direct" && (len(f.run.dns) > 0 || f.run.allowLoopback || len(f.run.fallback) > 0) {
		return usageErr("--dns, --allow-loopback-mx and --fallback-relay belong to --route direct")
	}
	switch route {
	case "sandbox":
		if len(f.run.relays) > 0 {
			return usageErr("--relay given with --route sandbox: drop one of them")
		}
	case "relay":
		if len(f.run.relays) == 0 {
			return usageErr("--route relay needs --relay smtp://user:password@host:587")
		}
		relays, err = f.run.parseRelays(a, settings)
		if err != nil {
			return err
		}
	case "direct":
		if len(f.run.relays) > 0 {
			return usageErr("--relay goes with --route relay; with --route direct use --fallback-relay")
		}
		settings.DNS, settings.AllowLoopbackMX, settings.FallbackAfter = f.run.dns, f.run.allowLoopback, f.run.fallbackAfter
		if f.run.mxPort != 25 {
			settings.MXPort = f.run.mxPort
		}
		for _, s := range f.run.dns {
			if _, err := mx.ParseServer(s); err != nil {
				return usageErr("--dns %q: %v", s, err)
			}
		}
		if len(f.run.fallback) > 0 {
			f.run.relays = f.run.fallback
			if relays, err = f.run.parseRelays(a, settings); err != nil {
				return err
			}
		}
	default:
		return usageErr("--route %q: use sandbox, relay or direct", route)
	}

	msg, err := readMessage(f)
	if err != nil {
		return err
	}
	tmpl, err := campaign.ParseTemplate(&store.Campaign{Message: *msg})
	if err != nil {
		return &exitErr{code: exitError, err: err}
	}
	if err := f.checkDKIM(settings, campaign.FromDomain(tmpl)); err != nil {
		return err
	}

	st, err := a.createStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	name := f.name
	if name == "" {
		base := strings.TrimSuffix(filepath.Base(f.recipients), filepath.Ext(f.recipients))
		name = base + "-" + time.Now().Format("20060102-150405")
	}
	c := &store.Campaign{
		Name: name, Status: store.CampaignRunning, Route: rt.Route(route), RouteConfig: settings.Encode(),
		Profile: profileJSON(profile), MaxAge: f.maxAge, RetryMin: f.retryMin, Message: *msg,
	}
	if err := a.importList(ctx, st, c, f.recipients, tmpl, f.caps.listOptions()); err != nil {
		return err
	}
	return a.runCampaign(ctx, st, c, relays, profile, f.run)
}

// checkDKIM stores the signing settings when --dkim-key is given and loads
// the key once now, so a bad key stops the send before anything is stored.
func (f *sendFlags) checkDKIM(settings *campaign.Settings, fromDomain string) error {
	d := f.dkim
	if d.KeyFile == "" {
		if d.Domain != "" {
			return usageErr("--dkim-domain needs --dkim-key")
		}
		return nil
	}
	if d.Domain == "" {
		d.Domain = fromDomain
	}
	abs, err := filepath.Abs(d.KeyFile)
	if err != nil {
		return usageErr("--dkim-key: %v", err)
	}
	d.KeyFile = abs // resume may run from another directory
	if _, _, err := d.LoadSigner(os.ReadFile, fromDomain); err != nil {
		return usageErr("%v", err)
	}
	settings.DKIM = &d
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

// importList streams the CSV into the campaign in one transaction. The
// template is rendered for the first good recipient before anything is
// stored: an error there stops everything with the file and line.
func (a *app) importList(ctx context.Context, st store.Store, c *store.Campaign, path string, tmpl *render.Template, opt recipient.Options) error {
	file, err := os.Open(path)
	if err != nil {
		return &exitErr{code: exitUsage, err: fmt.Errorf("recipients: %w", err)}
	}
	defer file.Close()

	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows := make(chan recipient.Recipient, 1024)
	var (
		stats    recipient.Stats
		readErr  error
		badRows  []recipient.RowError
		badCount int
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(rows)
		stats, readErr = recipient.Read(ictx, file, opt, func(r recipient.Recipient) error {
			select {
			case rows <- r:
				return nil
			case <-ictx.Done():
				return ictx.Err()
			}
		}, func(e recipient.RowError) {
			badCount++
			if len(badRows) < 20 {
				badRows = append(badRows, e)
			}
		})
	}()
	first := true
	next := func() (*store.NewRecipient, error) {
		r, ok := <-rows
		if !ok {
			<-done
			var fe *recipient.FileError
			if errors.As(readErr, &fe) {
				return nil, &listError{path: path, fe: fe}
			}
			if readErr != nil {
				return nil, readErr
			}
			return nil, nil
		}
		if first {
			first = false
			if _, err := tmpl.Render(render.Recipient{Email: r.Address.String(), Fields: r.Fields}, "", nil); err != nil {
				return nil, fmt.Errorf("the message does not render for the first recipient (%s, line %d): %w", r.Address, r.Line, err)
			}
		}
		return &store.NewRecipient{Line: r.Line, Email: r.Address.String(), Domain: r.Address.Domain,
			Key: r.Address.Key(), Fields: r.Fields}, nil
	}
	err = st.ImportCampaign(ctx, c, next)
	cancel()
	for range rows { // let the reader finish
	}
	<-done
	for _, e := range badRows {
		fmt.Fprintf(a.stderr, "%s:%d: %s%s\n", filepath.Base(path), e.Line, e.Reason, raise(e))
	}
	if badCount > len(badRows) {
		fmt.Fprintf(a.stderr, "... and %d more rejected rows\n", badCount-len(badRows))
	}
	if err != nil {
		if errors.Is(err, store.ErrExists) {
			return &exitErr{code: exitUsage, err: fmt.Errorf("a campaign named %q exists already: pick another --campaign, or continue it with: mailout resume %s", c.Name, c.Name)}
		}
		return &exitErr{code: exitError, err: fmt.Errorf("nothing was imported or sent: %w", err)}
	}
	if stats.Imported == 0 {
		return &exitErr{code: exitError, err: fmt.Errorf("%s: no valid recipient (%d rows rejected)", path, badCount)}
	}
	fmt.Fprintf(a.stderr, "Campaign %q: %d recipients imported from %s", c.Name, stats.Imported, filepath.Base(path))
	if badCount > 0 {
		fmt.Fprintf(a.stderr, ", %d rows rejected (%d invalid, %d duplicates)", badCount, stats.Invalid, stats.Duplicates)
	}
	fmt.Fprintln(a.stderr)
	return nil
}

func profileJSON(p throttle.Profile) []byte {
	b, _ := json.Marshal(p)
	return b
}

// defaultHELO is this machine's name, with a warning when it is not fully
// qualified: many receiving servers distrust a bare EHLO name (RFC 5321
// §4.1.1.1 asks for the client's FQDN).
func (a *app) defaultHELO() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	if !strings.Contains(strings.Trim(h, "."), ".") {
		fmt.Fprintf(a.stderr, "warning: this machine's name %q is not a fully qualified domain name; some servers refuse such clients: set --helo mail.yourdomain.example\n", h)
	}
	return h
}
