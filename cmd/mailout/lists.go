package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/audience"
	"mailout/internal/recipient"
	"mailout/internal/store"
)

func (a *app) listsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lists",
		Short: "Keep lists of subscribers to send campaigns to",
		Long: `A list keeps subscribers in the database across campaigns: import a CSV
file into it (the same rules and caps as send --recipients; an address the
list already has is updated), export it back, and send a campaign to it
with: mailout send --list NAME --message FILE. Addresses on the
suppression list stay in the list but are not sent to.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.listsCreateCmd(), a.listsImportCmd(), a.listsExportCmd(), a.listsShowCmd(), a.listsDeleteCmd())
	return cmd
}

// onList opens the store with open, finds the list by name and hands both
// to fn; a list that does not exist is a usage error.
func (a *app) onList(ctx context.Context, name string, open func(context.Context) (store.Store, error),
	fn func(ctx context.Context, aud *audience.Service, l *store.List) error) error {
	st, err := open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	aud := audience.New(st)
	l, err := a.findList(ctx, aud, name)
	if err != nil {
		return err
	}
	return fn(ctx, aud, l)
}

func (a *app) findList(ctx context.Context, aud *audience.Service, name string) (*store.List, error) {
	l, err := aud.ByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &exitErr{code: exitUsage, err: fmt.Errorf("no list named %q in %s (see: mailout lists show)", name, a.dbName())}
	}
	return l, err
}

func (a *app) listsCreateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME",
		Short: "Make a new, empty list",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := a.createStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			l, err := audience.New(st).Create(ctx, args[0])
			var ie *audience.InvalidError
			switch {
			case errors.As(err, &ie):
				return usageErr("%v", err)
			case errors.Is(err, store.ErrExists):
				return usageErr("a list named %q exists already (see: mailout lists show)", args[0])
			case err != nil:
				return err
			}
			fmt.Fprintf(a.stderr, "List %q created; fill it with: mailout lists import %s FILE.csv\n", l.Name, quoteArg(l.Name))
			return nil
		},
	}
}

func (a *app) listsImportCmd() *cobra.Command {
	var caps capFlags
	cmd := &cobra.Command{
		Use:   "import NAME FILE.csv",
		Short: "Add the rows of a CSV file to a list (an address it has is updated)",
		Long: `import reads a CSV file with a header row and an "email" column, by the
same rules and caps as send --recipients: every other column is a merge
field, a row whose address the list already has updates that subscriber,
and bad rows are reported with their line and left out. All the good rows
are stored in one transaction; a problem with the file as a whole (over a
cap, not UTF-8 text, no email column) stores nothing.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := caps.check(); err != nil {
				return err
			}
			file, err := os.Open(args[1])
			if err != nil {
				return &exitErr{code: exitUsage, err: fmt.Errorf("list file: %w", err)}
			}
			defer file.Close()
			return a.onList(cmd.Context(), args[0], a.openStore, func(ctx context.Context, aud *audience.Service, l *store.List) error {
				return a.importIntoList(ctx, aud, l, file, caps.listOptions())
			})
		},
	}
	caps.registerList(cmd.Flags())
	return cmd
}

// importIntoList imports the file into the list and prints the rejected
// rows (the first 20) with their line numbers, as send does, and the tally.
func (a *app) importIntoList(ctx context.Context, aud *audience.Service, l *store.List, file *os.File, opt recipient.Options) error {
	base := filepath.Base(file.Name())
	res, err := aud.Import(ctx, l.ID, file, "import:"+base, opt)
	var fe *recipient.FileError
	switch {
	case errors.As(err, &fe):
		return &exitErr{code: exitError, err: fmt.Errorf("nothing was imported: %w", &listError{path: file.Name(), fe: fe})}
	case err != nil:
		return &exitErr{code: exitError, err: fmt.Errorf("nothing was imported: %w", err)}
	}
	for i, e := range res.Rejected {
		if i == 20 {
			fmt.Fprintf(a.stderr, "... and %d more rejected rows\n", len(res.Rejected)-20)
			break
		}
		fmt.Fprintf(a.stderr, "%s:%d: %s%s\n", base, e.Line, e.Reason, raise(e))
	}
	fmt.Fprintf(a.stderr, "List %q: %d added, %d updated from %s", l.Name, res.Added, res.Updated, base)
	if len(res.Rejected) > 0 {
		fmt.Fprintf(a.stderr, ", %d rows rejected", len(res.Rejected))
	}
	fmt.Fprintln(a.stderr)
	return nil
}

func (a *app) listsExportCmd() *cobra.Command {
	var out string
	var raw bool
	cmd := &cobra.Command{
		Use:   "export NAME [-o FILE.csv]",
		Short: "Write a list as CSV (to FILE or standard output), its columns in order",
		Long: `export writes the list as CSV: a header of its columns in the order they
were first imported, then one row per subscriber. A cell a spreadsheet
would run as a formula (it starts with = + - @, a tab or a carriage return)
gets a single quote in front, which import takes off again: importing the
file gives the same list. --raw writes every cell exactly as stored.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.onList(cmd.Context(), args[0], a.openStore, func(ctx context.Context, aud *audience.Service, l *store.List) (err error) {
				var w io.Writer = a.stdout
				if out != "" {
					f, err := os.Create(out)
					if err != nil {
						return &exitErr{code: exitUsage, err: err}
					}
					defer func() {
						if cerr := f.Close(); err == nil {
							err = cerr
						}
					}()
					w = f
				}
				return aud.Export(ctx, l.ID, w, raw)
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	cmd.Flags().BoolVar(&raw, "raw", false, "write cells exactly as stored, without quoting the ones a spreadsheet would run as formulas")
	return cmd
}

func (a *app) listsShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "List the lists with their numbers of subscribers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			all, err := audience.New(st).All(ctx)
			if err != nil {
				return err
			}
			if len(all) == 0 {
				fmt.Fprintf(a.stdout, "No lists in %s yet. Make one with: mailout lists create NAME\n", a.dbName())
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSUBSCRIBERS\tCOLUMNS\tCREATED")
			for _, l := range all {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", l.Name, l.Subscribers, len(l.Columns), l.CreatedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
}

func (a *app) listsDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a list and its subscribers (campaigns sent to it keep theirs)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.onList(cmd.Context(), args[0], a.openStore, func(ctx context.Context, aud *audience.Service, l *store.List) error {
				if err := aud.Delete(ctx, l.ID); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "List %q deleted with its %d subscribers\n", l.Name, l.Subscribers)
				return nil
			})
		},
	}
}
