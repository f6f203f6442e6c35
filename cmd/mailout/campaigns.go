package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/queue"
	"mailout/internal/store"
)

func (a *app) campaignsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "campaigns",
		Short: "List the campaigns in the database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			list, err := st.Campaigns(ctx)
			if err != nil {
				return err
			}
			if len(list) == 0 {
				fmt.Fprintf(a.stdout, "No campaigns in %s yet. Start one with: mailout send --recipients FILE.csv --message FILE\n", a.dbName())
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCREATED\tROUTE\tSTATUS\tTOTAL\tDELIVERED\tFAILED\tDEFERRED\tPENDING\tSENDING")
			for _, c := range list {
				n, err := st.Counts(ctx, c.ID)
				if err != nil {
					return err
				}
				status := string(c.Status)
				if c.Status == store.CampaignRunning && campaign.Scheduled(&c, time.Now()) {
					status = "scheduled for " + c.StartAt.Local().Format(time.DateTime)
				} else if reason := a.staleReason(&c); reason != "" {
					status += " (" + reason + ")"
				} else if c.StatusReason != "" {
					status += " (" + c.StatusReason + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", c.Name, c.CreatedAt.Local().Format(time.DateTime),
					c.Route, status, n.Total, n.ByState[queue.Delivered], n.ByState[queue.Failed],
					n.ByState[queue.Deferred], n.ByState[queue.Pending], n.ByState[queue.Sending])
			}
			return tw.Flush()
		},
	}
}
