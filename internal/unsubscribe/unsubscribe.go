// Package unsubscribe makes and checks the one-click unsubscribe links of
// campaign messages (RFC 8058, RFC 2369) and applies an unsubscribe to
// the suppression list.
//
// Place in the flow: campaign run -> Key.URL(public URL, token) -> render
// writes List-Unsubscribe / List-Unsubscribe-Post and {{unsubscribe_url}}
// -> the recipient's mailbox provider POSTs to the link -> serve
// (internal/web) -> Apply -> store.Suppress.
//
// A token is, base64url without padding: a version byte, the campaign id
// and the delivery id as unsigned varints, and the first 16 bytes of an
// HMAC-SHA256 over all that under the database's unsubscribe key. It names
// the delivery, not the address, so the address never appears in a link;
// without the key a token can be neither forged nor guessed (2^128 tries),
// and changing one bit of it fails the check.
//
// The key is 32 random bytes made the first time a database needs one and
// kept in its settings table (LoadKey). It lives with the database rather
// than outside it (as the relay passwords' key does) because every
// process that sends a campaign — mailout send from the command line as
// much as mailout serve — must make links that serve accepts, with no
// more configuration than the database itself; and a copy of the database
// already holds the addresses the key protects.
package unsubscribe

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"mailout/internal/store"
)

// SettingKey is the settings-table key under which the database's
// unsubscribe key is kept.
const SettingKey = "unsubscribe.key"

// Reason is the suppression reason of an unsubscribe.
const Reason = "unsubscribed"

// Source is the suppression source of an unsubscribe through a link
// (the List-Unsubscribe header or {{unsubscribe_url}}).
const Source = "unsubscribe-link"

// Path is the URL path of a link, before the token; serve answers there.
const Path = "/u/"

const (
	keySize      = 32
	tokenVersion = 1
	macSize      = 16
	// confirmLife is how long the confirmation page's form field is valid.
	confirmLife = 24 * time.Hour
)

// ErrBadToken is returned for a token that was not made with this
// database's key (forged, altered, truncated or of an unknown version).
var ErrBadToken = errors.New("not a valid unsubscribe link")

// ErrPublicURL is returned (wrapped) for a public URL that cannot be used.
var ErrPublicURL = errors.New("invalid public URL")

// Key signs and checks tokens. Its String never shows the key.
type Key struct {
	raw []byte
}

func (k *Key) String() string { return "unsubscribe.Key(…)" }

// NewKey makes a Key of 32 raw bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != keySize {
		return nil, fmt.Errorf("unsubscribe: the key must be %d bytes", keySize)
	}
	return &Key{raw: append([]byte(nil), raw...)}, nil
}

// LoadKey returns the database's unsubscribe key, making and storing a
// random one the first time.
func LoadKey(ctx context.Context, acc store.Accounts) (*Key, error) {
	raw, err := acc.Setting(ctx, SettingKey)
	if errors.Is(err, store.ErrNotFound) {
		raw = make([]byte, keySize)
		_, _ = rand.Read(raw) // crypto/rand does not fail on supported platforms
		// Processes that make the first key at once (the workers of a
		// fleet) all keep the one stored first.
		raw, err = acc.AddSetting(ctx, SettingKey, raw)
	}
	if err != nil {
		return nil, fmt.Errorf("unsubscribe: read the key: %w", err)
	}
	return NewKey(raw)
}

func (k *Key) mac(label string, b []byte) []byte {
	m := hmac.New(sha256.New, k.raw)
	m.Write([]byte("mailout " + label + "\x00"))
	m.Write(b)
	return m.Sum(nil)[:macSize]
}

// MAC signs b for another kind of link of the database (the double
// opt-in confirmation link): the label keeps the kinds apart, so a token
// of one kind never passes for another. It returns 16 bytes.
func (k *Key) MAC(label string, b []byte) []byte { return k.mac(label, b) }

// Token returns the token of one delivery of one campaign.
func (k *Key) Token(campaignID, deliveryID int64) string {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+macSize)
	b = append(b, tokenVersion)
	b = binary.AppendUvarint(b, uint64(campaignID))
	b = binary.AppendUvarint(b, uint64(deliveryID))
	b = append(b, k.mac("unsubscribe", b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Parse checks a token and returns the campaign and delivery it names;
// ErrBadToken when it was not made with this key.
func (k *Key) Parse(token string) (campaignID, deliveryID int64, err error) {
	if len(token) > 64 {
		return 0, 0, ErrBadToken
	}
	// Strict: the unused bits of the last character must be zero, so no
	// two strings decode to the same token.
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) < 1+2+macSize || b[0] != tokenVersion {
		return 0, 0, ErrBadToken
	}
	body, sum := b[:len(b)-macSize], b[len(b)-macSize:]
	if !hmac.Equal(sum, k.mac("unsubscribe", body)) {
		return 0, 0, ErrBadToken
	}
	c, n := binary.Uvarint(body[1:])
	if n <= 0 {
		return 0, 0, ErrBadToken
	}
	d, m := binary.Uvarint(body[1+n:])
	if m <= 0 || 1+n+m != len(body) || c == 0 || d == 0 || c > 1<<62 || d > 1<<62 {
		return 0, 0, ErrBadToken
	}
	return int64(c), int64(d), nil
}

// Confirm returns the value of the confirmation page's form field for
// token, issued at now: the page's button sends it back, and the POST
// takes it in place of List-Unsubscribe=One-Click for a day.
func (k *Key) Confirm(token string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 36)
	return ts + "." + base64.RawURLEncoding.EncodeToString(k.mac("confirm", []byte(token+"\x00"+ts)))
}

// CheckConfirm reports whether v is a form field Confirm issued for token
// less than a day before now.
func (k *Key) CheckConfirm(token, v string, now time.Time) bool {
	ts, sum, ok := strings.Cut(v, ".")
	if !ok || len(ts) > 16 {
		return false
	}
	sec, err := strconv.ParseInt(ts, 36, 64)
	if err != nil {
		return false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sum)
	if err != nil || !hmac.Equal(got, k.mac("confirm", []byte(token+"\x00"+ts))) {
		return false
	}
	issued := time.Unix(sec, 0)
	return !issued.After(now.Add(time.Minute)) && now.Sub(issued) < confirmLife
}

// CheckPublicURL checks the base of the links: an absolute https URL
// (http only when the host is a loopback address or localhost, for labs),
// with no user, query or fragment. It returns it without a trailing slash.
func CheckPublicURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrPublicURL, err)
	}
	if u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%w: %q is not an absolute URL such as https://mail.example.com", ErrPublicURL, s)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("%w: %q: no user, query or fragment", ErrPublicURL, s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			// Mailbox providers fetch and POST the link; RFC 8058 §3.1
			// requires an https URI.
			return "", fmt.Errorf("%w: %q: the links must be https (http only for a loopback host, in a lab)", ErrPublicURL, s)
		}
	default:
		return "", fmt.Errorf("%w: %q: the scheme must be https", ErrPublicURL, s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// URL is the link of token under the public URL base (as CheckPublicURL
// returned it).
func URL(base, token string) string { return base + Path + token }

// Target is what a valid token names.
type Target struct {
	Campaign *store.Campaign
	Delivery *store.Delivery
}

// Lookup checks token and finds its delivery; ErrBadToken for a token not
// made with k or naming a delivery that is not there.
func Lookup(ctx context.Context, st store.Store, k *Key, token string) (*Target, error) {
	cid, did, err := k.Parse(token)
	if err != nil {
		return nil, err
	}
	c, err := st.Campaign(ctx, cid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrBadToken
	}
	if err != nil {
		return nil, err
	}
	var found *store.Delivery
	errStop := errors.New("stop")
	err = st.Deliveries(ctx, cid, store.DeliveryFilter{AfterID: did - 1}, func(d *store.Delivery) error {
		if d.ID == did {
			found = d
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if found == nil {
		return nil, ErrBadToken
	}
	return &Target{Campaign: c, Delivery: found}, nil
}

// Apply puts the address token names on the suppression list, with
// Reason, Source and its campaign. It is idempotent: an address already
// on the list keeps its entry (store.Suppress).
func Apply(ctx context.Context, st store.Store, k *Key, token string, now time.Time) (*Target, error) {
	t, err := Lookup(ctx, st, k, token)
	if err != nil {
		return nil, err
	}
	err = st.Suppress(ctx, store.Suppression{
		Key: t.Delivery.Key, Reason: Reason, Source: Source, Campaign: t.Campaign.Name, At: now,
	})
	if err != nil {
		return nil, fmt.Errorf("unsubscribe: %w", err)
	}
	return t, nil
}

// Count returns how many entries of the suppression list are unsubscribes
// from the campaign named name.
func Count(ctx context.Context, st store.Store, name string) (int, error) {
	n := 0
	err := st.Suppressions(ctx, func(s *store.Suppression) error {
		if s.Reason == Reason && s.Campaign == name {
			n++
		}
		return nil
	})
	return n, err
}
