package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"mailout/internal/account"
)

func (a *app) adminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage the web app's administrator account",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(a.adminCreateCmd())
	return cmd
}

func (a *app) adminCreateCmd() *cobra.Command {
	var email, passwordEnv string
	cmd := &cobra.Command{
		Use:   "create --email EMAIL --password-env VAR",
		Short: "Create the administrator who signs in to mailout serve",
		Long: `Creates the administrator account of the web app (mailout serve), the
first and only one, in the database (created if needed). The password is
read from the environment variable named by --password-env, so that it
appears in no command line or shell history; it needs at least 10
characters and is stored only as an argon2id hash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if email == "" || passwordEnv == "" {
				return usageErr("--email and --password-env are required")
			}
			password := a.getenv(passwordEnv)
			if password == "" {
				return usageErr("--password-env: %s is empty or not set", passwordEnv)
			}
			ctx := cmd.Context()
			st, err := a.createStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			u, err := account.New(st, account.Options{}).CreateAdmin(ctx, email, password)
			switch {
			case errors.Is(err, account.ErrAdminExists):
				return &exitErr{code: exitUsage, err: fmt.Errorf("%w in %s", err, a.dbName())}
			case errors.Is(err, account.ErrBadEmail):
				return usageErr("--email: %v", err)
			case errors.Is(err, account.ErrPasswordTooShort), errors.Is(err, account.ErrPasswordTooLong):
				return usageErr("--password-env: %v", err)
			case err != nil:
				return err
			}
			fmt.Fprintf(a.stdout, "administrator %s created in %s\n", u.Email, a.dbName())
			return nil
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "the administrator's email address (the sign-in name)")
	cmd.Flags().StringVar(&passwordEnv, "password-env", "", "environment variable holding the password")
	return cmd
}
