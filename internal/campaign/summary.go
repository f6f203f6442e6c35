package campaign

import (
	"context"

	"mailout/internal/outcome"
	"mailout/internal/report"
	"mailout/internal/route"
	"mailout/internal/store"
)

// Summary is the end of a run as a front end shows it: the campaign's
// counts, the advice of the outcome that paused it (in lang, "en" or
// "es"), the doctor's diagnosis, and on the direct route the tally per
// recipient domain. It reads the campaign again, so its status is the
// stored one.
func (s *Service) Summary(ctx context.Context, c *store.Campaign, res *Result, lang string) (*report.Summary, error) {
	fresh, err := s.st.Campaign(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	settings, err := SettingsOf(fresh)
	if err != nil {
		return nil, err
	}
	sum := report.NewSummary(fresh, res.Counts)
	if sum.Unsubscribed, err = s.Unsubscribed(ctx, fresh); err != nil {
		return nil, err
	}
	if res.PauseResult != nil {
		sum.Advice = outcome.Advice(res.PauseResult.Class, settings.Route, lang)
	}
	if res.Diagnosis != nil {
		sum.Diagnosis = res.Diagnosis.JSON()
		sum.Advice = res.Diagnosis.Advice(lang)
	}
	if settings.Route == route.Direct {
		tallies, err := s.st.DomainTallies(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		sum.Domains = report.Domains(tallies)
	}
	return sum, nil
}
