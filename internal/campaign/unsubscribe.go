package campaign

import (
	"context"
	"fmt"
	"time"

	"mailout/internal/addr"
	"mailout/internal/render"
	"mailout/internal/store"
	"mailout/internal/unsubscribe"
)

// OneClick is a campaign's one-click unsubscribe (RFC 8058): with a
// PublicURL every message carries List-Unsubscribe with the recipient's
// link under it (where mailout serve answers), List-Unsubscribe-Post, and
// {{unsubscribe_url}} may be used in the message.
type OneClick struct {
	// PublicURL is the web app's address as the recipients' providers
	// reach it: https, or http for a loopback host (labs).
	PublicURL string
	// Mailto, when set, is an address that List-Unsubscribe names too, as
	// a mailto: URI (someone must read it; mailout does not).
	Mailto string
}

// Check returns o with the public URL in its canonical form; an
// *InputError for a URL or address that cannot be used.
func (o OneClick) Check() (OneClick, error) {
	if o.PublicURL == "" {
		if o.Mailto != "" {
			return o, &InputError{Field: "unsubscribe-mailto", Err: fmt.Errorf("%w: a mailto: unsubscribe goes with the https link (--public-url)", unsubscribe.ErrPublicURL)}
		}
		return o, nil
	}
	u, err := unsubscribe.CheckPublicURL(o.PublicURL)
	if err != nil {
		return o, &InputError{Field: "public-url", Err: err}
	}
	o.PublicURL = u
	if o.Mailto != "" {
		a, err := addr.Parse(o.Mailto)
		if err != nil {
			return o, &InputError{Field: "unsubscribe-mailto", Err: err}
		}
		o.Mailto = a.String()
	}
	return o, nil
}

func (s *Settings) oneClick() OneClick {
	return OneClick{PublicURL: s.PublicURL, Mailto: s.UnsubscribeMailto}
}

// SetOneClick changes a stored campaign's one-click unsubscribe (resume
// with --public-url) and c with it. The message must parse with it.
func (s *Service) SetOneClick(ctx context.Context, c *store.Campaign, o OneClick) error {
	o, err := o.Check()
	if err != nil {
		return err
	}
	settings, err := SettingsOf(c)
	if err != nil {
		return err
	}
	settings.PublicURL, settings.UnsubscribeMailto = o.PublicURL, o.Mailto
	if _, err := render.Parse(source(&c.Message), render.Options{OneClick: o.PublicURL != ""}); err != nil {
		return err
	}
	enc := settings.Encode()
	if err := s.st.SetRouteConfig(ctx, c.ID, enc); err != nil {
		return fmt.Errorf("%w: %w", ErrStoreFailed, err)
	}
	c.RouteConfig = enc
	return nil
}

// UnsubscribeKey is the database's key for unsubscribe links, made the
// first time it is needed.
func (s *Service) UnsubscribeKey(ctx context.Context) (*unsubscribe.Key, error) {
	return unsubscribe.LoadKey(ctx, s.st)
}

// UnsubscribeTarget checks an unsubscribe link's token and finds what it
// names, changing nothing; unsubscribe.ErrBadToken when it is not one of
// this database's.
func (s *Service) UnsubscribeTarget(ctx context.Context, token string) (*unsubscribe.Target, error) {
	k, err := s.UnsubscribeKey(ctx)
	if err != nil {
		return nil, err
	}
	return unsubscribe.Lookup(ctx, s.st, k, token)
}

// Unsubscribe applies an unsubscribe link: the address goes on the
// suppression list (reason "unsubscribed", the campaign), once however
// often the link is used; unsubscribe.ErrBadToken changes nothing.
func (s *Service) Unsubscribe(ctx context.Context, token string, now time.Time) (*unsubscribe.Target, error) {
	k, err := s.UnsubscribeKey(ctx)
	if err != nil {
		return nil, err
	}
	return unsubscribe.Apply(ctx, s.st, k, token, now)
}

// Unsubscribed counts the campaign's recipients who unsubscribed through
// its links.
func (s *Service) Unsubscribed(ctx context.Context, c *store.Campaign) (int, error) {
	return Unsubscribed(ctx, s.st, c)
}

// Unsubscribed is Service.Unsubscribed for a front end that opened the
// store alone (mailout report).
func Unsubscribed(ctx context.Context, st store.Store, c *store.Campaign) (int, error) {
	return unsubscribe.Count(ctx, st, c.Name)
}

// sampleUnsubscribe gives r, for a preview or a test send of a draft with
// a public URL, a link of the campaign's form that names no delivery
// (opening it says the link is not valid), so that the headers and
// {{unsubscribe_url}} show as the recipients will see them.
func (d *Draft) sampleUnsubscribe(r render.Recipient) render.Recipient {
	if d.settings.PublicURL != "" && r.Unsubscribe == "" {
		r.Unsubscribe = unsubscribe.URL(d.settings.PublicURL, "preview")
		r.UnsubscribeMailto = d.settings.UnsubscribeMailto
	}
	return r
}
