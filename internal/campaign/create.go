package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"time"

	"mailout/internal/readahead"
	"mailout/internal/recipient"
	"mailout/internal/render"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// NewCampaign is what a front end gives to create a campaign.
type NewCampaign struct {
	Name    string
	Message *store.Message
	// Routing is the checked route (RouteConfig.Check).
	Routing *Routing
	// DKIM, when set, signs every message; it is checked (the key loads
	// and fits the From domain) before anything is stored.
	DKIM *DKIMSettings
	// OneClick, with a public URL, gives every message one-click
	// unsubscribe headers; it is checked here.
	OneClick OneClick
	Profile  throttle.Profile
	// MaxAge: temporary failures are retried this long; RetryMin is the
	// first retry delay.
	MaxAge, RetryMin time.Duration
	// StartAt, when set, schedules the campaign: nothing is sent before
	// that time (Run returns StopDeferred with ScheduledFor set).
	StartAt time.Time
}

// ErrNoRecipients is returned by Create when the list has no valid
// recipient: nothing is stored.
var ErrNoRecipients = errors.New("no valid recipient")

// RenderError is returned by Create when the message does not render for
// the first recipient of the list: nothing is stored.
type RenderError struct {
	Email string
	Line  int
	Err   error
}

func (e *RenderError) Error() string {
	return fmt.Sprintf("the message does not render for the first recipient (%s, line %d): %v", e.Email, e.Line, e.Err)
}

func (e *RenderError) Unwrap() error { return e.Err }

// Draft is a campaign checked and ready to store: its message parses, its
// DKIM key loads. Nothing is stored yet and no database is needed.
type Draft struct {
	nc       NewCampaign
	tmpl     *render.Template
	settings Settings
}

// Check parses the message and checks the DKIM key (its path is made
// absolute, so a later run may start from another directory; the signing
// domain defaults to the From address's domain). A message that does not
// parse is returned as render's error; a DKIM key that cannot be used is
// an *InputError.
func (nc NewCampaign) Check(env Env) (*Draft, error) {
	env = env.withDefaults()
	oc, err := nc.OneClick.Check()
	if err != nil {
		return nil, err
	}
	tmpl, err := render.Parse(source(nc.Message), render.Options{OneClick: oc.PublicURL != ""})
	if err != nil {
		return nil, err
	}
	d := &Draft{nc: nc, tmpl: tmpl, settings: *nc.Routing.Settings}
	d.settings.PublicURL, d.settings.UnsubscribeMailto = oc.PublicURL, oc.Mailto
	if nc.DKIM != nil {
		k := *nc.DKIM
		from := FromDomain(tmpl)
		if k.Domain == "" {
			k.Domain = from
		}
		if k.KeyFile, err = filepath.Abs(k.KeyFile); err != nil {
			return nil, &InputError{Field: "dkim-key", Err: err}
		}
		if _, _, err := k.LoadSigner(env.ReadFile, from); err != nil {
			return nil, &InputError{Err: err}
		}
		d.settings.DKIM = &k
	}
	return d, nil
}

// Create stores a new campaign and imports its list in one transaction,
// ranging over rows as they are read (recipient.Rows): every rejected row
// goes to rejected (which may be nil); a file-level error stops the import
// and nothing is stored. The message is rendered for the first recipient
// before anything is stored. It returns the stored campaign (status
// running, ready for Run) and the number of recipients imported. A name
// in use is store.ErrExists; a list without a valid recipient is
// ErrNoRecipients; a *recipient.FileError and a *RenderError are returned
// as such.
func (s *Service) Create(ctx context.Context, d *Draft, rows iter.Seq2[*recipient.Recipient, error], rejected func(recipient.RowError)) (*store.Campaign, int, error) {
	nc := d.nc
	profile, _ := json.Marshal(nc.Profile)
	c := &store.Campaign{
		Name: nc.Name, Status: store.CampaignRunning, Route: d.settings.Route, RouteConfig: d.settings.Encode(),
		Profile: profile, MaxAge: nc.MaxAge, RetryMin: nc.RetryMin, Message: *nc.Message,
		StartAt: nc.StartAt,
	}
	// The store pulls recipients one by one inside its transaction, while
	// the list is read ahead of it.
	next, stop := readahead.Pull2(rows)
	defer stop()
	imported := 0
	err := s.st.ImportCampaign(ctx, c, func() (*store.NewRecipient, error) {
		for {
			r, err, ok := next()
			if !ok && imported == 0 {
				return nil, ErrNoRecipients // nothing is stored
			}
			if !ok {
				return nil, nil
			}
			var re recipient.RowError
			if errors.As(err, &re) {
				if rejected != nil {
					rejected(re)
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			if imported == 0 {
				if _, err := d.tmpl.Render(render.Recipient{Email: r.Address.String(), Fields: r.Fields}, "", nil); err != nil {
					return nil, &RenderError{Email: r.Address.String(), Line: r.Line, Err: err}
				}
			}
			imported++
			return &store.NewRecipient{Line: r.Line, Email: r.Address.String(), Domain: r.Address.Domain,
				Key: r.Address.Key(), Fields: r.Fields}, nil
		}
	})
	var (
		fe *recipient.FileError
		re *RenderError
	)
	switch {
	case errors.As(err, &fe):
		return nil, 0, fe
	case errors.As(err, &re):
		return nil, 0, re
	case errors.Is(err, ErrNoRecipients):
		return nil, 0, ErrNoRecipients
	case err != nil:
		return nil, 0, err
	}
	return c, imported, nil
}
