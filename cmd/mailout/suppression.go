package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/report"
	"mailout/internal/store"
)

func (a *app) suppressionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "suppression",
		Short: "Manage the suppression list: addresses no campaign sends to",
		Long: `The suppression list holds the addresses (or whole domains, written
@example.com) that no campaign sends to. A hard bounce (the server says the
mailbox does not exist) is added on its own, with the campaign and the
server's reply. A suppressed recipient is stored as "suppressed" when a
campaign is imported, when retry would send again, and just before a
message goes out, so an address suppressed while a campaign runs is not
sent to. Addresses are compared by their canonical key: the local part in
lower case, the domain in its ASCII (A-label) form.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.suppressionListCmd(), a.suppressionAddCmd(), a.suppressionRemoveCmd(),
		a.suppressionImportCmd(), a.suppressionExportCmd())
	return cmd
}

func (a *app) suppressionListCmd() *cobra.Command {
	var (
		format string
		raw    bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the suppressed addresses (table, csv or json)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := report.NewSuppressionWriter(a.stdout, report.Format(format), raw)
			if err != nil {
				return usageErr("--format: %v", err)
			}
			return a.writeSuppressions(cmd, w)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table, csv or json")
	cmd.Flags().BoolVar(&raw, "raw", false, "CSV: keep cells exactly as they are (no formula neutralisation)")
	return cmd
}

func (a *app) writeSuppressions(cmd *cobra.Command, w *report.SuppressionWriter) error {
	ctx := cmd.Context()
	st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Suppressions(ctx, w.Write); err != nil {
		return err
	}
	return w.Close()
}

// suppressionKeys turns the arguments into suppression keys; a bad one
// stops the command before anything is changed.
func suppressionKeys(args []string) ([]string, error) {
	keys := make([]string, 0, len(args))
	for _, s := range args {
		k, err := report.SuppressionKey(s)
		if err != nil {
			return nil, usageErr("%q: %v", s, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// onSuppressionKeys turns the command's addresses and @domains into
// suppression keys, opens the store with open and hands both to fn.
func (a *app) onSuppressionKeys(ctx context.Context, args []string, open func(context.Context) (store.Store, error),
	fn func(ctx context.Context, st store.Store, keys []string) error) error {
	keys, err := suppressionKeys(args)
	if err != nil {
		return err
	}
	st, err := open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(ctx, st, keys)
}

func (a *app) suppressionAddCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "add ADDRESS|@DOMAIN...",
		Short: "Suppress addresses, or whole domains written @example.com",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.onSuppressionKeys(cmd.Context(), args, a.createStore, func(ctx context.Context, st store.Store, keys []string) error {
				for _, k := range keys {
					if err := st.Suppress(ctx, store.Suppression{Key: k, Reason: reason, Source: "manual"}); err != nil {
						return err
					}
				}
				fmt.Fprintf(a.stderr, "%d entries on the suppression list (an entry already there keeps its reason)\n", len(keys))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "manual", "why: unsubscribed, complaint, hard-bounce…")
	return cmd
}

func (a *app) suppressionRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove ADDRESS|@DOMAIN...",
		Short: "Take addresses or domains off the suppression list",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.onSuppressionKeys(cmd.Context(), args, a.openStore, func(ctx context.Context, st store.Store, keys []string) error {
				removed := 0
				for i, k := range keys {
					ok, err := st.Unsuppress(ctx, k)
					if err != nil {
						return err
					}
					if !ok {
						fmt.Fprintf(a.stderr, "%s: not on the suppression list\n", args[i])
						continue
					}
					removed++
				}
				fmt.Fprintf(a.stderr, "%d entries removed from the suppression list\n", removed)
				return nil
			})
		},
	}
}

func (a *app) suppressionImportCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Add the addresses of a CSV file (columns address,reason,source,date)",
		Long: `import reads a CSV file with a header row: an "address" (or "email")
column, and optionally reason, source, date (2006-01-02 or RFC 3339),
campaign, code, enhanced and text, as "suppression export" writes them.
An empty source becomes the file's name. Bad rows are reported with their
line and skipped; an address already on the list keeps its entry.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return &exitErr{code: exitUsage, err: err}
			}
			defer f.Close()
			ctx := cmd.Context()
			st, err := a.createStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			n := 0
			bad, err := report.ReadSuppressions(f, reason, filepath.Base(args[0]), time.Now(), func(s store.Suppression) error {
				n++
				return st.Suppress(ctx, s)
			})
			for _, e := range bad {
				fmt.Fprintf(a.stderr, "%s:%v\n", filepath.Base(args[0]), e)
			}
			if err != nil {
				return &exitErr{code: exitError, err: fmt.Errorf("%s: %w", args[0], err)}
			}
			fmt.Fprintf(a.stderr, "%d entries imported from %s, %d rows skipped\n", n, filepath.Base(args[0]), len(bad))
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "imported", "reason for rows whose reason column is empty")
	return cmd
}

func (a *app) suppressionExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export [FILE.csv]",
		Short: "Write the suppression list as CSV (to FILE or standard output), for import elsewhere",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			var out io.Writer = a.stdout
			if len(args) == 1 {
				f, err := os.Create(args[0])
				if err != nil {
					return &exitErr{code: exitUsage, err: err}
				}
				defer func() {
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}()
				out = f
			}
			w, err := report.NewSuppressionWriter(out, report.FormatCSV, true)
			if err != nil {
				return err
			}
			return a.writeSuppressions(cmd, w)
		},
	}
}
