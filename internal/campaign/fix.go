package campaign

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"mailout/internal/doctor"
	"mailout/internal/store"
)

// ErrNoFix: the campaign is not paused with a diagnosis that suggests a
// relay setting to apply.
var ErrNoFix = errors.New("the campaign's diagnosis suggests no relay setting to apply")

// FixOf is the relay setting a paused campaign's stored diagnosis
// suggests (the doctor's Verdict.Suggest: the same account on the port
// and TLS mode that answered, e.g. smtps:// on 465 for a STARTTLS URL on
// an implicit-TLS port), or "" when there is none.
func FixOf(c *store.Campaign) string {
	if c.Status != store.CampaignPaused || len(c.Diagnosis) == 0 {
		return ""
	}
	rep, err := doctor.ParseReport(c.Diagnosis)
	if err != nil || rep.Verdict.Suggest == "" {
		return ""
	}
	if _, _, err := relayToFix(c, rep.Verdict.Suggest); err != nil {
		return ""
	}
	return rep.Verdict.Suggest
}

// relayToFix finds the stored relay the suggestion is about (same host
// and user) and returns its index and the stored URL with the
// suggestion's scheme and port: where its password comes from is kept.
func relayToFix(c *store.Campaign, suggest string) (int, string, error) {
	sug, err := url.Parse(suggest)
	if err != nil || sug.Host == "" {
		return 0, "", ErrNoFix
	}
	settings, err := SettingsOf(c)
	if err != nil {
		return 0, "", err
	}
	for i, raw := range settings.Relays {
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() != sug.Hostname() || u.User.Username() != sug.User.Username() {
			continue
		}
		u.Scheme, u.Host = sug.Scheme, sug.Host
		return i, u.String(), nil
	}
	return 0, "", ErrNoFix
}

// ApplyFix stores the relay setting the paused campaign's diagnosis
// suggests (FixOf) in place of the relay it is about, so the next run
// (Resume) uses it, and returns the new relay URL (no password in it).
func (s *Service) ApplyFix(ctx context.Context, id int64) (string, error) {
	c, err := s.st.Campaign(ctx, id)
	if err != nil {
		return "", err
	}
	suggest := FixOf(c)
	if suggest == "" {
		return "", fmt.Errorf("%w: %q", ErrNoFix, c.Name)
	}
	i, fixed, err := relayToFix(c, suggest)
	if err != nil {
		return "", err
	}
	settings, err := SettingsOf(c)
	if err != nil {
		return "", err
	}
	settings.Relays[i] = fixed
	if err := s.st.SetRouteConfig(ctx, id, settings.Encode()); err != nil {
		return "", fmt.Errorf("%w: %w", ErrStoreFailed, err)
	}
	s.opt.Logger.Info("relay setting fixed as the diagnosis suggests", "campaign", c.Name, "relay", fixed)
	return fixed, nil
}
