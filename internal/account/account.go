// Package account signs people in to the web app and authorises API
// clients: the administrator's account (argon2id password hash), browser
// sessions, API tokens, and a limit on failed logins.
//
// Nothing a client holds is stored as is: a session cookie is 32 random
// bytes (base64url) of which the store keeps only the SHA-256; an API
// token is "mo_" and 32 random bytes, shown once, of which the store keeps
// only the SHA-256; a password is kept as its argon2id hash.
package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
	"unicode"

	"mailout/internal/addr"
	"mailout/internal/store"
)

// The errors of the service; callers test them with errors.Is.
var (
	// ErrBadCredentials: the email is unknown or the password wrong (the
	// two are not told apart).
	ErrBadCredentials = errors.New("wrong email or password")
	// ErrRateLimited: too many failed logins from this address or for
	// this email; try again later.
	ErrRateLimited = errors.New("too many failed logins; try again later")
	// ErrNoSession: the cookie names no session, or one that expired.
	ErrNoSession = errors.New("not signed in")
	// ErrNoToken: the API token is unknown, revoked or malformed.
	ErrNoToken = errors.New("unknown API token")
	// ErrAdminExists: CreateAdmin was called when an account exists.
	ErrAdminExists = errors.New("an administrator account already exists")
	// ErrBadEmail: the administrator's email is not an address.
	ErrBadEmail = errors.New("not an email address")
	// ErrBadTokenName: a token name is empty, too long or has control
	// characters or spaces.
	ErrBadTokenName = errors.New("a token name is 1 to 64 characters without spaces")
)

// TokenPrefix starts every API token, so a leaked one is recognisable
// (and secret scanners can find it).
const TokenPrefix = "mo_"

// Options configure a Service. Zero fields take the defaults.
type Options struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// SessionTTL is how long a session lasts from login; default 14 days.
	SessionTTL time.Duration
	// Hash are the argon2id parameters of new hashes (tests lower them);
	// default DefaultHashParams.
	Hash HashParams
	// MaxFailures failed logins within FailureWindow, from one remote
	// address or for one email, make the next ones ErrRateLimited until
	// the oldest leaves the window; default 5 in 15 minutes.
	MaxFailures   int
	FailureWindow time.Duration
}

// Service is the accounts service over a store. It is safe for
// concurrent use.
type Service struct {
	st  store.Store
	opt Options

	dummyOnce sync.Once
	dummy     string // hash checked for an unknown email

	mu       sync.Mutex
	failures map[string][]time.Time // "ip:…" or "email:…" → recent failures, oldest first
}

// New returns the service over st.
func New(st store.Store, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 14 * 24 * time.Hour
	}
	if o.Hash == (HashParams{}) {
		o.Hash = DefaultHashParams
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.FailureWindow <= 0 {
		o.FailureWindow = 15 * time.Minute
	}
	return &Service{st: st, opt: o, failures: map[string][]time.Time{}}
}

// HasAdmin reports whether an account exists (the first-run page is
// offered only when none does).
func (s *Service) HasAdmin(ctx context.Context) (bool, error) {
	us, err := s.st.Users(ctx)
	if err != nil {
		return false, err
	}
	return len(us) > 0, nil
}

// CreateAdmin creates the administrator's account, the first and only
// one: ErrAdminExists once an account exists, so the first-run page
// cannot be used to add another. The password must meet CheckPassword.
func (s *Service) CreateAdmin(ctx context.Context, email, password string) (*store.User, error) {
	a, err := addr.Parse(strings.TrimSpace(email))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadEmail, err)
	}
	if err := CheckPassword(password); err != nil {
		return nil, err
	}
	if has, err := s.HasAdmin(ctx); err != nil {
		return nil, err
	} else if has {
		return nil, ErrAdminExists
	}
	u := &store.User{Email: a.String(), PasswordHash: hashPassword(password, s.opt.Hash)}
	if err := s.st.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, ErrAdminExists
		}
		return nil, err
	}
	return u, nil
}

// Login checks the email and password and starts a session, whose cookie
// value it returns. Failures are counted per remote address (host of
// "host:port", or as given) and per email; after MaxFailures within
// FailureWindow every attempt is ErrRateLimited, without checking the
// password, until the window has passed. A failure for an unknown email
// costs the same hash as for a known one, so timing does not tell
// whether an account exists.
func (s *Service) Login(ctx context.Context, email, password, remote string) (string, error) {
	email = canonicalEmail(email)
	keys := []string{"ip:" + remoteHost(remote), "email:" + strings.ToLower(email)}
	now := s.opt.Now()
	// The attempt counts as a failure from the start, so that parallel
	// attempts cannot all pass the check before any is recorded; a
	// success takes it back.
	if !s.attempt(keys, now) {
		return "", ErrRateLimited
	}
	u, err := s.st.UserByEmail(ctx, email)
	switch {
	case errors.Is(err, store.ErrNotFound):
		_, _ = verifyPassword(password, s.dummyHash())
		return "", ErrBadCredentials
	case err != nil:
		s.forgive(keys, now)
		return "", err
	}
	ok, err := verifyPassword(password, u.PasswordHash)
	if err != nil {
		return "", fmt.Errorf("user %d: %w", u.ID, err)
	}
	if !ok {
		return "", ErrBadCredentials
	}
	s.succeeded(keys)
	cookie, id := newSecret("")
	sess := &store.Session{ID: id, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.opt.SessionTTL)}
	if err := s.st.CreateSession(ctx, sess); err != nil {
		return "", err
	}
	return cookie, nil
}

// Session returns the user of a session cookie: ErrNoSession when it
// names no session or an expired one (which is then removed).
func (s *Service) Session(ctx context.Context, cookieValue string) (*store.User, error) {
	if cookieValue == "" {
		return nil, ErrNoSession
	}
	id := digest(cookieValue)
	sess, err := s.st.Session(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	if !s.opt.Now().Before(sess.ExpiresAt) {
		_ = s.st.DeleteSession(ctx, id)
		return nil, ErrNoSession
	}
	u, err := s.st.User(ctx, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	return u, err
}

// Logout ends the session of a cookie; ending one that is not there is
// no error.
func (s *Service) Logout(ctx context.Context, cookieValue string) error {
	if cookieValue == "" {
		return nil
	}
	return s.st.DeleteSession(ctx, digest(cookieValue))
}

// DeleteExpiredSessions removes the sessions that have ended.
func (s *Service) DeleteExpiredSessions(ctx context.Context) (int, error) {
	return s.st.DeleteExpiredSessions(ctx, s.opt.Now())
}

// CreateToken creates an API token called name and returns it: it is
// shown this once and only its SHA-256 is kept. A name in use is
// store.ErrExists.
func (s *Service) CreateToken(ctx context.Context, name string) (string, error) {
	if err := checkTokenName(name); err != nil {
		return "", err
	}
	plain, hash := newSecret(TokenPrefix)
	if err := s.st.CreateToken(ctx, &store.APIToken{Name: name, Hash: hash}); err != nil {
		return "", fmt.Errorf("token %q: %w", name, err)
	}
	return plain, nil
}

// CheckToken returns the token a client presented and records its use:
// ErrNoToken when it is unknown, revoked or malformed.
func (s *Service) CheckToken(ctx context.Context, plaintext string) (*store.APIToken, error) {
	if !strings.HasPrefix(plaintext, TokenPrefix) {
		return nil, ErrNoToken
	}
	t, err := s.st.TokenByHash(ctx, digest(plaintext))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoToken
	}
	if err != nil {
		return nil, err
	}
	t.LastUsed = s.opt.Now()
	if err := s.st.TouchToken(ctx, t.ID, t.LastUsed); err != nil {
		if errors.Is(err, store.ErrNotFound) { // revoked meanwhile
			return nil, ErrNoToken
		}
		return nil, err
	}
	return t, nil
}

// Tokens lists the API tokens (names and dates; never the tokens).
func (s *Service) Tokens(ctx context.Context) ([]store.APIToken, error) {
	return s.st.Tokens(ctx)
}

// DeleteToken revokes the token called name: ErrNoToken when there is
// none.
func (s *Service) DeleteToken(ctx context.Context, name string) error {
	ts, err := s.st.Tokens(ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.Name == name {
			err := s.st.DeleteToken(ctx, t.ID)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("token %q: %w", name, ErrNoToken)
			}
			return err
		}
	}
	return fmt.Errorf("token %q: %w", name, ErrNoToken)
}

func checkTokenName(name string) error {
	if name == "" || len(name) > 64 {
		return ErrBadTokenName
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return ErrBadTokenName
		}
	}
	return nil
}

// newSecret returns prefix + 32 random bytes in base64url (no padding),
// and its digest, the only form that is stored.
func newSecret(prefix string) (plain, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	plain = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return plain, digest(plain)
}

// digest is the stored form of a session cookie or token: SHA-256, hex.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// dummyHash is a hash of a random password with the service's
// parameters, checked when the email is unknown.
func (s *Service) dummyHash() string {
	s.dummyOnce.Do(func() {
		p, _ := newSecret("")
		s.dummy = hashPassword(p, s.opt.Hash)
	})
	return s.dummy
}

// canonicalEmail is the email as CreateAdmin stores it (the domain in
// A-labels), so that the Unicode and A-label forms sign in alike; input
// that is not an address is kept as typed, to fail as any wrong email.
func canonicalEmail(email string) string {
	email = strings.TrimSpace(email)
	if a, err := addr.Parse(email); err == nil {
		return a.String()
	}
	return email
}

func remoteHost(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// attempt records a failure for each key unless one of them already has
// MaxFailures within the window; it reports whether the attempt may go on.
func (s *Service) attempt(keys []string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	since := now.Add(-s.opt.FailureWindow)
	for _, k := range keys {
		s.failures[k] = recent(s.failures[k], since)
		if len(s.failures[k]) >= s.opt.MaxFailures {
			return false
		}
	}
	for _, k := range keys {
		s.failures[k] = append(s.failures[k], now)
	}
	if len(s.failures) > 10000 { // forget keys with no recent failure
		for k, v := range s.failures {
			if v = recent(v, since); len(v) == 0 {
				delete(s.failures, k)
			}
		}
	}
	return true
}

// forgive takes back the failure attempt recorded at now.
func (s *Service) forgive(keys []string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		v := s.failures[k]
		for i := len(v) - 1; i >= 0; i-- {
			if v[i].Equal(now) {
				s.failures[k] = append(v[:i], v[i+1:]...)
				break
			}
		}
	}
}

// succeeded clears the email's failures after a good login, and takes
// back this attempt from the remote address's.
func (s *Service) succeeded(keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.failures[keys[0]]; len(v) > 0 {
		s.failures[keys[0]] = v[:len(v)-1]
	}
	delete(s.failures, keys[1])
}

// recent drops the times before since from v (oldest first).
func recent(v []time.Time, since time.Time) []time.Time {
	i := 0
	for i < len(v) && !v[i].After(since) {
		i++
	}
	if i == len(v) {
		return nil
	}
	return v[i:]
}
