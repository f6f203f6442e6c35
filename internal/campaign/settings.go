package campaign

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"mailout/internal/route"
	"mailout/internal/smtpclient"
	"mailout/internal/store"
)

// Settings is a campaign's route and sending settings as stored with it
// (store.Campaign.RouteConfig). It holds no secret: relay URLs are stored
// without their password, with where the password comes from instead.
type Settings struct {
	// Route is stored once, as store.Campaign.Route, and copied here when
	// the settings are read (SettingsOf).
	Route route.Route `json:"-"`
	// Relays are redacted relay URLs, in the order they are tried.
	Relays []string `json:"relays,omitempty"`
	// RelayPasswordInURL marks relays whose password was typed in the URL:
	// it is not stored, so resuming needs the --relay flags again.
	RelayPasswordInURL []bool `json:"relay_password_in_url,omitempty"`
	// RelayPasswordSettings, in step with Relays, names the stored relay
	// account (the web app's settings) whose password a relay uses, or
	// "": the name is stored, the password is looked up at each run.
	RelayPasswordSettings []string `json:"relay_password_settings,omitempty"`
	RelayCA               string   `json:"relay_ca,omitempty"`
	HELO                  string   `json:"helo,omitempty"`
	// Direct route: DNS servers ("IP" or "IP:PORT"; empty = the system's),
	// the lab setting that allows MX hosts on loopback and private
	// addresses, and the MX port (25 except in labs).
	DNS             []string `json:"dns,omitempty"`
	AllowLoopbackMX bool     `json:"allow_loopback_mx,omitempty"`
	MXPort          int      `json:"mx_port,omitempty"`
	// SourceIP is the source address of the direct route's connections,
	// a worker's own (RunOptions.SourceIP); never stored: it belongs to
	// the machine, not to the campaign.
	SourceIP net.IP `json:"-"`
	// Hybrid: with route "direct", Relays (when set) is the fallback relay,
	// used when direct delivery fails for a local reason or after
	// FallbackAfter temporary failures.
	FallbackAfter int `json:"fallback_after,omitempty"`
	// SMTP timeouts; zero takes the RFC 5321 §4.5.3.2 defaults (see
	// smtpclient.Timeouts).
	ConnectTimeout time.Duration `json:"connect_timeout,omitempty"`
	CommandTimeout time.Duration `json:"command_timeout,omitempty"`
	DataTimeout    time.Duration `json:"data_timeout,omitempty"`
	// DKIM, when set, signs every message (the key is read from its file
	// at each start, never stored).
	DKIM *DKIMSettings `json:"dkim,omitempty"`
	// PublicURL, when set, gives every message one-click unsubscribe
	// headers with a link under it (OneClick); UnsubscribeMailto is the
	// optional mailto: address beside the link.
	PublicURL         string `json:"public_url,omitempty"`
	UnsubscribeMailto string `json:"unsubscribe_mailto,omitempty"`
	// ReturnPath, when set, is the bounce address: each message's
	// envelope sender is ReturnPath with a signed per-delivery token
	// added to its local part (VERP: bounces+TOKEN@example.com), so a
	// bounce read by "mailout bounces fetch" names its delivery.
	ReturnPath string `json:"return_path,omitempty"`
	// MessageIDSalt makes Message-IDs deterministic per delivery, so a
	// message sent again after a crash carries the same Message-ID.
	MessageIDSalt string `json:"message_id_salt"`
}

// NewSalt returns a random Message-ID salt.
func NewSalt() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Encode returns the JSON form.
func (s *Settings) Encode() []byte {
	b, _ := json.Marshal(s)
	return b
}

// SettingsOf reads a stored campaign's settings. The campaign's Route is
// the route; databases written before it was the only place kept it in
// the settings' JSON too, and a campaign whose Route is empty takes it
// from there, else the default (the sandbox).
func SettingsOf(c *store.Campaign) (*Settings, error) {
	var s struct {
		Settings
		Legacy route.Route `json:"route"`
	}
	if len(c.RouteConfig) > 0 {
		if err := json.Unmarshal(c.RouteConfig, &s); err != nil {
			return nil, fmt.Errorf("campaign settings: %w", err)
		}
	}
	s.Settings.Route = c.Route
	if s.Settings.Route == "" {
		s.Settings.Route = s.Legacy.OrDefault()
	}
	if _, err := route.Parse(string(s.Settings.Route)); err != nil {
		return nil, fmt.Errorf("campaign %q: %w", c.Name, err)
	}
	return &s.Settings, nil
}

// Timeouts are the SMTP timeouts the settings ask for. The command timeout
// applies to every command but DATA, whose RFC default (2 minutes) is kept
// unless a shorter command timeout was asked for.
func (s *Settings) Timeouts() smtpclient.Timeouts {
	c := s.CommandTimeout
	t := smtpclient.Timeouts{
		Connect: s.ConnectTimeout, Greeting: c, EHLO: c, StartTLS: c, Auth: c, Mail: c, Rcpt: c,
		DataBlock: c, DataTerm: s.DataTimeout, Quit: c,
	}
	if c > 0 && c < 2*time.Minute {
		t.DataInit = c
	}
	return t
}

// RouteOf is a stored campaign's route, read as SettingsOf reads it.
func RouteOf(c *store.Campaign) route.Route {
	s, err := SettingsOf(c)
	if err != nil {
		return c.Route.OrDefault()
	}
	return s.Route
}
