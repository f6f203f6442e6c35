package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/doctor"
	"mailout/internal/queue"
	"mailout/internal/report"
	"mailout/internal/store"
)

func (a *app) reportCmd() *cobra.Command {
	var (
		format   string
		raw      bool
		states   []string
		sum      bool
		jsonS    bool
		byDomain bool
	)
	cmd := &cobra.Command{
		Use:   "report CAMPAIGN",
		Short: "Per-recipient outcomes of a campaign (table, csv or json)",
		Long: `report lists every recipient of a campaign with its state, outcome class,
the server's own reply, the route it went by and the advice line for
failures. CSV cells that a spreadsheet would run as formulas are prefixed
with ' unless --raw is given. --summary prints only the tally.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, c, err := a.openCampaign(ctx, args[0])
			if err != nil {
				return err
			}
			defer st.Close()
			if byDomain {
				tallies, err := st.DomainTallies(ctx, c.ID)
				if err != nil {
					return err
				}
				rows := report.Domains(tallies)
				if format == "json" {
					return json.NewEncoder(a.stdout).Encode(rows)
				}
				return report.WriteDomains(a.stdout, rows, 0)
			}
			if sum || jsonS {
				n, err := st.Counts(ctx, c.ID)
				if err != nil {
					return err
				}
				s := report.NewSummary(c, n)
				if s.Unsubscribed, err = campaign.Unsubscribed(ctx, st, c); err != nil {
					return err
				}
				if reason := a.staleReason(c); reason != "" {
					s.Reason = reason
				}
				var diag *doctor.Report
				if c.Status == store.CampaignPaused && len(c.Diagnosis) > 0 {
					if diag, err = doctor.ParseReport(c.Diagnosis); err == nil {
						s.Diagnosis = c.Diagnosis
						s.Advice = diag.Advice(a.lang)
					}
				}
				if jsonS {
					return s.WriteJSON(a.stdout)
				}
				s.WriteText(a.stdout)
				if diag != nil {
					fmt.Fprintln(a.stdout)
					diag.WriteText(a.stdout, a.lang)
				}
				return nil
			}
			return a.writeReport(ctx, st, c, report.Format(format), raw, states)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table, csv or json")
	cmd.Flags().BoolVar(&raw, "raw", false, "CSV: keep cells exactly as they are (no formula neutralisation)")
	cmd.Flags().StringArrayVar(&states, "state", nil, "only recipients in this state: pending, deferred, delivered, failed, suppressed (repeatable)")
	cmd.Flags().BoolVar(&sum, "summary", false, "print only the summary")
	cmd.Flags().BoolVar(&jsonS, "summary-json", false, "print only the summary, as JSON")
	cmd.Flags().BoolVar(&byDomain, "by-domain", false, "one line per recipient domain: outcomes and the mail servers used")
	return cmd
}

func (a *app) writeReport(ctx context.Context, st store.Store, c *store.Campaign, f report.Format, raw bool, states []string) error {
	var filter store.DeliveryFilter
	for _, s := range states {
		ok := false
		for _, k := range queue.States {
			if string(k) == s {
				ok = true
			}
		}
		if !ok {
			return usageErr("--state %q: use pending, sending, deferred, delivered, failed or suppressed", s)
		}
		filter.States = append(filter.States, queue.State(s))
	}
	w, err := report.NewWriter(a.stdout, f, raw)
	if err != nil {
		return usageErr("--format: %v", err)
	}
	if err := st.Deliveries(ctx, c.ID, filter, func(d *store.Delivery) error {
		return w.Write(report.NewRow(d, c.Route, a.lang))
	}); err != nil {
		return err
	}
	return w.Close()
}
