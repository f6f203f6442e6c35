package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"mailout/internal/campaign"
)

// The settings page stores the public address of the app and the
// unsubscribe mailto, refusing what serve --public-url refuses with the
// reason next to the field; the compose page then gives campaigns
// one-click unsubscribe under the stored address, unless serve's
// --public-url is given, which wins.
func TestSettingsPublicURLReachesCompose(t *testing.T) {
	for _, tc := range []struct {
		name string
		flag campaign.OneClick
		want campaign.OneClick // the campaign's stored public URL and mailto
	}{
		{"stored", campaign.OneClick{}, campaign.OneClick{PublicURL: "https://app.example.com/mailout", Mailto: "unsub@example.com"}},
		{"flag wins", campaign.OneClick{PublicURL: "https://flag.example.com"}, campaign.OneClick{PublicURL: "https://flag.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newComposeAppWith(t, threeSubscribers, func(c *Config) { c.OneClick = tc.flag })
			for _, bad := range []struct{ form url.Values }{
				{url.Values{"public_url": {"http://app.example.com"}}},
				{url.Values{"public_url": {"https://app.example.com"}, "unsubscribe_mailto": {"nobody"}}},
				{url.Values{"unsubscribe_mailto": {"unsub@example.com"}}},
			} {
				res, page := a.postForm("/settings/public", bad.form)
				if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, `class="field-error"`) {
					t.Errorf("%v: %s, want 422 with the field's error", bad.form, res.Status)
				}
			}
			res, _ := a.postForm("/settings/public", url.Values{"public_url": {"https://app.example.com/mailout/"}, "unsubscribe_mailto": {"unsub@example.com"}})
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("save: %s", res.Status)
			}
			if _, page := a.get("/settings"); !strings.Contains(page, `value="https://app.example.com/mailout/"`) || !strings.Contains(page, `value="unsub@example.com"`) {
				t.Error("the settings page does not show the stored public address")
			}

			v := a.form("create")
			v.Set("text", "Dear {{.first_name}},\r\nleave: {{unsubscribe_url}}\r\n")
			if res, body := a.postForm("/campaigns/new", v); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("create: %s\n%s", res.Status, body)
			}
			cs := a.campaigns()
			if len(cs) != 1 {
				t.Fatalf("%d campaigns", len(cs))
			}
			s, err := campaign.SettingsOf(a.campaign(cs[0].ID))
			if err != nil || s.PublicURL != tc.want.PublicURL || s.UnsubscribeMailto != tc.want.Mailto {
				t.Errorf("campaign's one-click: %q %q, want %+v (%v)", s.PublicURL, s.UnsubscribeMailto, tc.want, err)
			}
		})
	}
}
