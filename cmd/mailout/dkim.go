package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/dkim"
	"mailout/internal/mx"
)

func (a *app) dkimCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dkim",
		Short: "DKIM keys: make one and see the DNS record to publish",
	}
	cmd.AddCommand(a.dkimKeygenCmd(), a.dkimCheckCmd())
	return cmd
}

func (a *app) dkimCheckCmd() *cobra.Command {
	var d campaign.DKIMSettings
	var dnsServer string
	cmd := &cobra.Command{
		Use:   "check --key FILE --domain example.com [--selector mailout] [--dns IP[:PORT]]",
		Short: "Check that the DNS record of a DKIM key is published and matches the key",
		Long: `check looks up SELECTOR._domainkey.DOMAIN and says, with the record to
publish, what is wrong: no record, several records, no or an empty p=, a key
of another type, a public key that is not the one of this private key, or
t=y (testing mode, a warning). Exit 0 when receivers can verify, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if d.KeyFile == "" || d.Domain == "" {
				return usageErr("--key and --domain are required")
			}
			s, _, err := d.LoadSigner(os.ReadFile, "")
			if err != nil {
				return usageErr("%v", err)
			}
			res := &net.Resolver{}
			if dnsServer != "" {
				addr, err := mx.ParseServer(dnsServer)
				if err != nil {
					return usageErr("--dns %q: %v", dnsServer, err)
				}
				res = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
					var dl net.Dialer
					return dl.DialContext(ctx, network, addr.String())
				}}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			defer cancel()
			name, _ := s.DNSRecord()
			err = dkim.CheckPublished(ctx, s, res.LookupTXT)
			switch {
			case err == nil:
				fmt.Fprintf(a.stdout, "OK: %s publishes the public key of %s; receivers can verify the signatures.\n", name, d.KeyFile)
				return nil
			case dkim.IsWarning(err):
				fmt.Fprintf(a.stdout, "OK, with a warning: %v\n", err)
				return nil
			}
			return &exitErr{code: exitError, err: err}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&d.KeyFile, "key", "", "the DKIM private key file")
	fl.StringVar(&d.Domain, "domain", "", "the signing domain (d=)")
	fl.StringVar(&d.Selector, "selector", "mailout", "the selector")
	fl.StringVar(&dnsServer, "dns", "", "DNS server to ask (default: the system's)")
	return cmd
}

func (a *app) dkimKeygenCmd() *cobra.Command {
	var domain, selector, algo, out string
	var bits int
	cmd := &cobra.Command{
		Use:   "keygen --domain example.com --out dkim.pem [--selector mailout] [--algo rsa|ed25519]",
		Short: "Make a DKIM private key and print the DNS TXT record to publish",
		Long: `keygen writes a new private key (PKCS#8 PEM, readable by you only) and
prints the TXT record that receivers look up to check the signatures:
publish it in your domain's DNS, then send with
  mailout send ... --dkim-key FILE --dkim-selector SELECTOR

RSA 2048 is what every receiver checks (RFC 8301); Ed25519 (RFC 8463) is
smaller and faster to sign but not yet checked everywhere: if you use it,
sign with an RSA key as well through your relay, or stay with RSA.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if domain == "" || out == "" {
				return usageErr("--domain and --out are required")
			}
			key, err := dkim.GenerateKey(algo, bits)
			if err != nil {
				return usageErr("%v", err)
			}
			s, err := dkim.New(domain, selector, key, dkim.Options{})
			if err != nil {
				return usageErr("%v", err)
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, fs.ErrExist) {
				return usageErr("%s exists already: a new key would replace the one your DNS record names; choose another --out", out)
			}
			if err != nil {
				return &exitErr{code: exitError, err: err}
			}
			if _, err := f.Write(key); err != nil {
				f.Close()
				return &exitErr{code: exitError, err: err}
			}
			if err := f.Close(); err != nil {
				return &exitErr{code: exitError, err: err}
			}
			name, _ := s.DNSRecord()
			fmt.Fprintf(a.stdout, "Wrote the private key to %s (keep it secret).\n\nPublish this TXT record (name %s):\n\n%s\n\nThen send with: mailout send ... --dkim-key %s --dkim-selector %s\n",
				out, name, s.ZoneRecord(), quoteArg(out), s.Selector())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&domain, "domain", "", "the domain that signs (d=), normally your From address's domain")
	fl.StringVar(&selector, "selector", "mailout", "selector: the record goes at SELECTOR._domainkey.DOMAIN")
	fl.StringVar(&algo, "algo", "rsa", "rsa or ed25519")
	fl.IntVar(&bits, "bits", 0, "RSA key size, 2048 (the default) to 4096")
	fl.StringVar(&out, "out", "", "file for the private key (must not exist)")
	return cmd
}
