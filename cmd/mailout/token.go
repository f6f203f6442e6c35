package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/account"
	"mailout/internal/store"
)

func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the API tokens of mailout serve",
		Long: `An API token authorises a client of the web app's JSON API (/api/v1):
it is sent as "Authorization: Bearer mo_…". A token is shown once, when it is
created; the database keeps only its SHA-256, so a lost token cannot be
shown again: delete it and create another.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.tokenCreateCmd(), a.tokenListCmd(), a.tokenDeleteCmd())
	return cmd
}

func (a *app) tokenCreateCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Create an API token and print it, once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageErr("--name is required")
			}
			ctx := cmd.Context()
			st, err := a.createStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			tok, err := account.New(st, account.Options{}).CreateToken(ctx, name)
			switch {
			case errors.Is(err, store.ErrExists):
				return usageErr("--name: a token called %q already exists (see: mailout token list)", name)
			case errors.Is(err, account.ErrBadTokenName):
				return usageErr("--name: %v", err)
			case err != nil:
				return err
			}
			fmt.Fprintln(a.stdout, tok)
			fmt.Fprintln(a.stderr, "mailout: this token is shown once; keep it now (only its hash is stored)")
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "a name for the token (who or what uses it)")
	return cmd
}

func (a *app) tokenListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the API tokens (names and dates, never the tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			ts, err := account.New(st, account.Options{}).Tokens(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCREATED\tLAST USED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, when(t.CreatedAt), when(t.LastUsed))
			}
			return tw.Flush()
		},
	}
}

// when prints a time for a table; the zero time is "never".
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func (a *app) tokenDeleteCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "delete --name NAME",
		Short: "Revoke an API token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageErr("--name is required")
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			err = account.New(st, account.Options{}).DeleteToken(ctx, name)
			if errors.Is(err, account.ErrNoToken) {
				return usageErr("--name: no token called %q (see: mailout token list)", name)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "token %s deleted\n", name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the token's name")
	return cmd
}
