package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/outcome"
	"mailout/internal/store"
)

func (a *app) retryCmd() *cobra.Command {
	var (
		f       runFlags
		classes []string
	)
	cmd := &cobra.Command{
		Use:   "retry CAMPAIGN [--class CLASS]...",
		Short: "Send again to the recipients that failed, after the cause was fixed",
		Long: `retry moves the failed recipients of a campaign (all of them, or those of
the given outcome classes, e.g. --class auth-failed --class connect-timeout)
back to pending and sends the campaign again. Suppressed recipients stay
suppressed. See "mailout report CAMPAIGN" for the classes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var only []outcome.Class
			for _, c := range classes {
				if !knownClass(c) {
					return usageErr("--class %q is not an outcome class (see mailout report)", c)
				}
				only = append(only, outcome.Class(c))
			}
			return a.resume(cmd.Context(), cmd, args[0], &f, func(ctx context.Context, svc *campaign.Service, c *store.Campaign) error {
				n, err := svc.Requeue(ctx, c.ID, only)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "%d failed recipients queued again\n", n)
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&classes, "class", nil, "only recipients that failed with this class (repeatable)")
	f.register(cmd, false)
	return cmd
}

func knownClass(c string) bool {
	for _, k := range outcome.Classes {
		if string(k) == c {
			return true
		}
	}
	return false
}
