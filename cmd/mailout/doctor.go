package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/doctor"
	"mailout/internal/route"
)

// doctorFlags are the flags of `mailout doctor`.
type doctorFlags struct {
	routeFlags
	domains       []string
	campaign      string
	account       string
	json          bool
	probePorts    []int
	discoverPorts []int
	labHTTP       string
	timeout       time.Duration
	// The sender checks.
	sender     string
	returnPath string
	sourceIP   string
	dkim       campaign.DKIMSettings
}

func (a *app) doctorCmd() *cobra.Command {
	var f doctorFlags
	cmd := &cobra.Command{
		Use:   "doctor [--route direct] [--dns IP]... [--domain D]... | --relay URL... | --account ADDRESS | --sender ADDRESS [--dkim-key FILE --dkim-selector S]",
		Short: "Find out why mail does not get out, and what to do",
		Long: `doctor runs, by itself, every check of the network-troubleshooting guide and
prints a checklist (pass / warn / fail, with evidence) and a verdict in plain
words with what to do (--lang es for Spanish, --json for machines).

Direct delivery (the default): which DNS server is used, DNS on port 53 over
UDP and TCP, the MX of the domains (--domain, or the recipients' domains of
--campaign, else a few well-known ones), port 25 of their mail servers
(timeout = blocked by a firewall, antivirus, gateway or ISP; refused; no
route), banner, EHLO, STARTTLS and signs of interception.

Relay (--relay URL, same forms as "mailout send"): the host name, the port
(other usual ports are probed when it fails), banner, TLS mode against the
port, EHLO, AUTH, login, then MAIL FROM and RCPT TO a test address and RSET:
no message is sent.

--account user@example.com finds the SMTP server of a mailbox the way mail
clients do (autoconfig, SRV records, probing smtp./mail.) and prints the
--relay URL to use.

--sender news@example.com checks, instead of the network, what receivers
check about the sender in DNS, as the large mailbox providers' rules for
bulk senders ask: SPF of the return path's domain (--return-path, default
the sender) and whether it covers the route (the relay's addresses, or on
the direct route this machine's public address: --source-ip, else the
source address towards an MX host), the DKIM record of --dkim-key and
--dkim-selector, DMARC and the alignment of DKIM or SPF with From, and on
the direct route reverse DNS of the sending address and the EHLO name.

Exit status: 0 the route works (or the sender passes), 1 it does not, 2 usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.doctor(cmd.Context(), &f)
		},
	}
	f.routeFlags.register(cmd, forDoctor)
	fl := cmd.Flags()
	fl.StringArrayVar(&f.domains, "domain", nil, "recipient domain whose mail servers to test (repeatable)")
	fl.StringVar(&f.campaign, "campaign", "", "test the domains of this campaign's recipients")
	fl.StringVar(&f.account, "account", "", "find the SMTP settings of this mailbox address")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up the whole diagnosis after this long")
	fl.StringVar(&f.sender, "sender", "", "check this From address's SPF, DKIM, DMARC and reverse DNS instead of the network")
	fl.StringVar(&f.returnPath, "return-path", "", "with --sender: the envelope sender whose domain SPF checks (default: the sender)")
	fl.StringVar(&f.sourceIP, "source-ip", "", "with --sender, direct route: this machine's public sending address (default: the one the system uses)")
	fl.StringVar(&f.dkim.KeyFile, "dkim-key", "", "with --sender: the DKIM private key whose DNS record to check")
	fl.StringVar(&f.dkim.Selector, "dkim-selector", "mailout", "with --sender: the DKIM selector")
	fl.StringVar(&f.dkim.Domain, "dkim-domain", "", "with --sender: the DKIM signing domain (d=); default: the sender's domain")
	// Lab settings, hidden: tests and labs on loopback or in namespaces.
	fl.IntSliceVar(&f.probePorts, "probe-ports", nil, "labs only: relay ports to probe when the configured one fails")
	fl.IntSliceVar(&f.discoverPorts, "discover-ports", nil, "labs only: ports probed by --account")
	fl.StringVar(&f.labHTTP, "lab-http", "", "labs only: send every autoconfig HTTP request to this host:port")
	for _, n := range []string{"probe-ports", "discover-ports", "lab-http"} {
		_ = fl.MarkHidden(n)
	}
	return cmd
}

func (a *app) doctor(ctx context.Context, f *doctorFlags) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if f.account != "" && (len(f.relays) > 0 || f.route != "" || f.campaign != "" || f.sender != "") {
		return usageErr("--account goes alone (with --dns)")
	}
	if f.sender == "" && (f.returnPath != "" || f.sourceIP != "" || f.dkim.KeyFile != "" || f.dkim.Domain != "") {
		return usageErr("--return-path, --source-ip, --dkim-key and --dkim-domain go with --sender")
	}
	// The same route flags and checks as send; the route to check is
	// direct unless --relay is given.
	rt, err := a.routing(&f.routeFlags, campaign.RouteConfig{}, route.Direct, route.Direct, route.Relay)
	if err != nil {
		return err
	}
	cfg := rt.Doctor()
	if f.account != "" {
		return a.discover(ctx, f, cfg.DNS, cfg.HELO)
	}
	cfg.ProbePorts = f.probePorts
	if f.sender != "" {
		sc, err := senderConfig(f, rt.Route())
		if err != nil {
			return err
		}
		cfg.Domains = f.domains
		return a.printDoctor(f, doctor.CheckSender(ctx, cfg, sc))
	}
	if rt.Route() == route.Direct {
		cfg.Domains = f.domains
		if f.campaign != "" {
			domains, err := a.campaignDomains(ctx, f.campaign)
			if err != nil {
				return err
			}
			cfg.Domains = append(cfg.Domains, domains...)
		}
	} else if len(f.domains) > 0 || f.campaign != "" {
		return usageErr("--domain and --campaign belong to --route direct")
	}
	return a.printDoctor(f, doctor.Run(ctx, cfg))
}

// printDoctor prints a report as text or JSON; exit 1 when it is not OK.
func (a *app) printDoctor(f *doctorFlags, r *doctor.Report) error {
	if f.json {
		fmt.Fprintf(a.stdout, "%s\n", r.JSON())
	} else {
		r.WriteText(a.stdout, a.lang)
	}
	if !r.OK() {
		return &exitErr{code: exitError, err: errors.New("")}
	}
	return nil
}

// senderConfig checks the flags of the sender checks and loads the DKIM
// key (its bytes never leave the signer).
func senderConfig(f *doctorFlags, rt route.Route) (doctor.SenderConfig, error) {
	sc := doctor.SenderConfig{From: f.sender, ReturnPath: f.returnPath}
	if err := sc.Check(); err != nil {
		return sc, usageErr("%v", err)
	}
	var err error
	if f.sourceIP != "" {
		if rt != route.Direct {
			return sc, usageErr("--source-ip belongs to --route direct")
		}
		if sc.SourceIP, err = netip.ParseAddr(f.sourceIP); err != nil {
			return sc, usageErr("--source-ip %q is not an IP address", f.sourceIP)
		}
	}
	if f.dkim.KeyFile != "" {
		d := f.dkim
		fromDomain := sc.From[strings.LastIndexByte(sc.From, '@')+1:]
		if d.Domain == "" {
			d.Domain = fromDomain
		}
		if sc.DKIM, _, err = d.LoadSigner(os.ReadFile, fromDomain); err != nil {
			return sc, usageErr("%v", err)
		}
	}
	return sc, nil
}

// campaignDomains returns the distinct recipient domains of a campaign.
func (a *app) campaignDomains(ctx context.Context, name string) ([]string, error) {
	st, c, err := a.openCampaign(ctx, name)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	domains, err := st.Domains(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("campaign %s: %w", name, err)
	}
	if len(domains) > 5 { // a diagnosis, not a delivery: a handful is enough
		domains = domains[:5]
	}
	return domains, nil
}

// discover runs `mailout doctor --account`.
func (a *app) discover(ctx context.Context, f *doctorFlags, dns []string, helo string) error {
	dc := doctor.DiscoverConfig{Address: f.account, DNS: dns, Ports: f.discoverPorts, HELO: helo}
	if f.labHTTP != "" {
		dc.HTTPGet = doctor.HTTPGetVia(f.labHTTP, 10*time.Second)
	}
	d, err := doctor.Discover(ctx, dc)
	if d == nil {
		return usageErr("--account: %v", err)
	}
	if f.json {
		b, _ := json.MarshalIndent(d, "", "  ")
		fmt.Fprintf(a.stdout, "%s\n", b)
	} else {
		d.WriteText(a.stdout, a.lang)
	}
	if err != nil {
		return &exitErr{code: exitError, err: errors.New("")}
	}
	return nil
}
