package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/store"
)

func (a *app) resumeCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "resume CAMPAIGN",
		Short: "Continue a paused, interrupted or deferred campaign where it stopped",
		Long: `resume continues a campaign exactly where its per-recipient states say:
delivered and failed recipients are left alone, pending and due deferred
ones are sent. Recipients that were in flight when a previous run was
killed are sent again (they may get the message twice; the report flags
them as possible duplicates).

A relay password typed in the URL is not stored: give the same --relay
again. Passwords from --relay-password-env/-file are read again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.resume(cmd.Context(), cmd, args[0], &f, nil)
		},
	}
	f.register(cmd, false)
	return cmd
}

// resume runs a stored campaign again; before, when set, changes it first
// (retry requeues failures).
func (a *app) resume(ctx context.Context, cmd *cobra.Command, name string, f *runFlags,
	before func(context.Context, *campaign.Service, *store.Campaign) error) error {
	svc, err := a.openService(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	c, err := a.findCampaign(ctx, svc.Store(), name)
	if err != nil {
		return err
	}
	profile, err := storedProfile(c, f, cmd)
	if err != nil {
		return err
	}
	var relays *campaign.Relays
	if len(f.relays) > 0 {
		// The passwords typed in URLs are not stored: the same --relay
		// flags give them again.
		if err := campaign.RelaysApply(c); err != nil {
			return usageErr("campaign %q uses the %s route without a relay; --relay does not apply", name, campaign.RouteOf(c))
		}
		if relays, err = campaign.ParseRelays(f.relays, f.passwordEnv, f.passwordFile, a.env()); err != nil {
			return inputErr(err)
		}
	}
	if f.publicURL != "" || f.unsubMailto != "" {
		// The links of the messages still to send go under the new URL.
		err := svc.SetOneClick(ctx, c, f.oneClick())
		var ie *campaign.InputError
		switch {
		case errors.As(err, &ie):
			return inputErr(err)
		case err != nil:
			return &exitErr{code: exitError, err: err}
		}
	}
	if before != nil {
		if err := before(ctx, svc, c); err != nil {
			return err
		}
	}
	return a.runCampaign(ctx, svc, c, relays, profile, *f)
}
