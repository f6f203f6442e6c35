package web

import (
	"context"
	"net/http"
	"strings"

	"mailout/internal/campaign"
)

// publicForm is the settings page's "Public address of this app" as typed.
type publicForm struct {
	URL, Mailto string
}

// savePublic stores the public address of the app and the optional
// unsubscribe mailto with the settings; setting.Validate checks them as
// serve --public-url and --unsubscribe-mailto are checked.
func (s *server) savePublic(w http.ResponseWriter, r *http.Request) {
	st := s.loadSettings(w, r)
	if st == nil {
		return
	}
	f := publicForm{URL: strings.TrimSpace(r.PostFormValue("public_url")), Mailto: strings.TrimSpace(r.PostFormValue("unsubscribe_mailto"))}
	v := s.newSettingsView(r, st)
	v.Public = f
	st.PublicURL, st.UnsubscribeMailto = f.URL, f.Mailto
	s.save(w, r, st, v, "publicsaved")
}

// oneClick is the one-click unsubscribe of campaigns made in the web app:
// serve --public-url when given, else the stored public address (none
// without a secret key to read the settings).
func (s *server) oneClick(ctx context.Context) campaign.OneClick {
	if s.cfg.OneClick.PublicURL != "" {
		return s.cfg.OneClick
	}
	st, err := s.appSettings(ctx)
	if err != nil {
		s.log.Warn("compose: reading the settings", "err", err)
		return campaign.OneClick{}
	}
	return st.OneClick()
}
