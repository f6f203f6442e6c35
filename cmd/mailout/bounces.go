package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"mailout/internal/mailbox"
	"mailout/internal/store"
)

func (a *app) bouncesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bounces",
		Short: "Read the bounce mailbox: bounces, complaints, messages to review",
		Long: `A campaign sent with --return-path bounces@example.com has each message's
envelope sender set to bounces+TOKEN@example.com, the token naming the one
delivery. Bounces and feedback-loop complaints come back to that mailbox;
"mailout bounces fetch" reads it, records each bounce on its delivery (a
message delivered and bounced later is then failed, with the bounce's
class), puts hard bounces and complaints on the suppression list, and
keeps what it cannot read for "mailout bounces review". See docs/bounces.md.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.bouncesFetchCmd(), a.bouncesReviewCmd())
	return cmd
}

func (a *app) bouncesFetchCmd() *cobra.Command {
	var mailboxURL, passEnv, passFile, ca string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "fetch --mailbox URL [flags]",
		Short: "Read the bounce mailbox once and apply what it holds",
		Long: `fetch reads the bounce mailbox and applies every message it has not
processed before; a second run changes nothing.

  imap://USER@HOST[:143][/FOLDER]   STARTTLS required
  imaps://USER@HOST[:993][/FOLDER]  implicit TLS
  pop3://USER@HOST[:110]            STLS required
  pop3s://USER@HOST[:995]           implicit TLS
  imap+insecure://, pop3+insecure:// no TLS at all, for labs only

The password comes from --mailbox-password-env VAR or
--mailbox-password-file FILE, never from the URL. IMAP messages are
flagged \Seen and $MailoutProcessed; POP3 messages are remembered by their
UIDL. Nothing is deleted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := mailbox.Parse(mailboxURL)
			if err != nil {
				return usageErr("--mailbox: %v", err)
			}
			switch {
			case passEnv != "" && passFile != "":
				return usageErr("give the password with one of --mailbox-password-env and --mailbox-password-file")
			case passEnv != "":
				if c.Password = a.getenv(passEnv); c.Password == "" {
					return usageErr("--mailbox-password-env: %s is empty or not set", passEnv)
				}
			case passFile != "":
				b, err := os.ReadFile(passFile)
				if err != nil {
					return usageErr("--mailbox-password-file: %v", err)
				}
				c.Password = strings.TrimRight(string(b), "\r\n")
			default:
				return usageErr("give the mailbox password with --mailbox-password-env VAR or --mailbox-password-file FILE")
			}
			c.CAFile = ca
			if c.Security == mailbox.Insecure {
				fmt.Fprintf(a.stderr, "mailout: warning: %s has no TLS: the password crosses the network in clear text. Use imaps:// or pop3s:// unless this is a lab.\n", c)
			}
			st, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			sum, err := mailbox.Fetch(ctx, c, st, a.logger)
			if err != nil {
				return fmt.Errorf("bounces fetch %s: %w", c, err)
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(map[string]int{
					"read": sum.Read, "bounced": sum.Bounced, "complaints": sum.Complaints, "suppressed": sum.Suppressed,
					"delays": sum.Delays, "unchanged": sum.Unchanged, "review": sum.Review,
				})
			}
			fmt.Fprintf(a.stdout, "%s: %d new message(s): %d bounce(s), %d complaint(s), %d suppressed, %d delay notice(s), %d already applied, %d kept for review\n",
				c, sum.Read, sum.Bounced, sum.Complaints, sum.Suppressed, sum.Delays, sum.Unchanged, sum.Review)
			if sum.Review > 0 {
				fmt.Fprintln(a.stdout, "See them with: mailout bounces review")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&mailboxURL, "mailbox", "", "bounce mailbox URL: imap://, imaps://, pop3:// or pop3s://USER@HOST (required)")
	fl.StringVar(&passEnv, "mailbox-password-env", "", "environment variable holding the mailbox password")
	fl.StringVar(&passFile, "mailbox-password-file", "", "file holding the mailbox password")
	fl.StringVar(&ca, "mailbox-ca", "", "PEM file of the CA that signed the mailbox server's certificate (default: system roots)")
	fl.BoolVar(&asJSON, "json", false, "print the counts as JSON")
	_ = cmd.MarkFlagRequired("mailbox")
	return cmd
}

func (a *app) bouncesReviewCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "review",
		Short: "List the bounce mailbox's messages kept for review",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			type row struct {
				ID      int64  `json:"id"`
				At      string `json:"at"`
				Mailbox string `json:"mailbox"`
				UID     string `json:"uid"`
				From    string `json:"from"`
				Subject string `json:"subject"`
				Reason  string `json:"reason"`
			}
			var rows []row
			err = st.Reviews(ctx, func(r *store.Review) error {
				rows = append(rows, row{ID: r.ID, At: r.At.UTC().Format("2006-01-02 15:04:05"), Mailbox: r.Mailbox, UID: r.UID,
					From: r.Sender, Subject: r.Subject, Reason: r.Reason})
				return nil
			})
			if err != nil {
				return err
			}
			if asJSON {
				if rows == nil {
					rows = []row{}
				}
				return json.NewEncoder(a.stdout).Encode(rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(a.stdout, "No message is waiting for review.")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRECEIVED\tFROM\tSUBJECT\tREASON")
			for _, r := range rows {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.ID, r.At, r.From, r.Subject, r.Reason)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
