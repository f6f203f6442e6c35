package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
)

// pauseCmd and cancelCmd stop a campaign wherever it is being sent: by
// another mailout send or resume, or by mailout serve. The run reads its
// stored status every second and ends as it would on Ctrl-C here, after
// the messages in flight are finished and recorded.
func (a *app) pauseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pause CAMPAIGN",
		Short: "Pause a campaign, wherever it is being sent (continue it with resume)",
		Long: `pause stops a campaign that is being sent by another mailout process —
mailout send or resume in another terminal, or the web app (mailout serve) —
on the same database: within a second the run finishes the messages in
flight, records them and stops. Nothing is lost: continue with
mailout resume CAMPAIGN, or with Resume on the campaign's page.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.stop(cmd.Context(), args[0], false)
		},
	}
}

func (a *app) cancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel CAMPAIGN",
		Short: "Cancel a campaign for good, wherever it is being sent",
		Long: `cancel stops a campaign for good, wherever it is being sent (another
mailout process or mailout serve on the same database): the messages in
flight are finished and recorded, and nothing more is sent to it. The
recipients not yet sent stay pending in the report.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.stop(cmd.Context(), args[0], true)
		},
	}
}

func (a *app) stop(ctx context.Context, name string, cancel bool) error {
	svc, err := a.openService(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	c, err := a.findCampaign(ctx, svc.Store(), name)
	if err != nil {
		return err
	}
	stop, done := svc.Pause, "paused"
	if cancel {
		stop, done = svc.Cancel, "cancelled"
	}
	if err := stop(ctx, c.ID); err != nil {
		if errors.Is(err, campaign.ErrFinal) {
			return &exitErr{code: exitError, err: fmt.Errorf("campaign %q is %s already: there is nothing to stop", c.Name, c.Status)}
		}
		return err
	}
	fmt.Fprintf(a.stdout, "Campaign %q %s. A run sending it stops within a second, after recording the messages in flight.\n", c.Name, done)
	if !cancel {
		fmt.Fprintf(a.stdout, "Continue it with: mailout resume %s\n", quoteArg(c.Name))
	}
	return nil
}
