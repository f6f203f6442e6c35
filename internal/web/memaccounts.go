package web

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"mailout/internal/store"
)

// Errors of MemoryAccounts; the server is given them in AccountErrors.
var (
	ErrBadCredentials = errors.New("wrong email or password")
	ErrRateLimited    = errors.New("too many failed sign-ins; wait and try again")
	ErrAdminExists    = errors.New("the administrator exists already")
	ErrNoSession      = errors.New("no such session")
	ErrWeakPassword   = errors.New("the password needs at least 10 characters")
)

// MemoryAccounts keeps the one administrator and the sessions in memory,
// for as long as the process lives: the first-run page creates the
// administrator again after each start. The accounts service with its
// users in the database (internal/account) takes its place in serve.
// Passwords are kept only as PBKDF2-SHA256 hashes, sessions only as the
// SHA-256 of their cookie value.
type MemoryAccounts struct {
	mu       sync.Mutex
	admin    *store.User
	salt     []byte
	hash     []byte
	sessions map[string]session // by sha256 hex of the cookie value
	fails    map[string][]time.Time
	now      func() time.Time
}

type session struct {
	user    *store.User
	expires time.Time
}

// Sign-in limits of MemoryAccounts.
const (
	memSessionTTL = 12 * time.Hour
	memMaxFails   = 10 // per remote address and per email, in memFailWindow
	memFailWindow = 15 * time.Minute
	// memIterations: PBKDF2 rounds, as OWASP advises for SHA-256.
	memIterations = 600_000
)

// NewMemoryAccounts returns accounts with no administrator yet.
func NewMemoryAccounts() *MemoryAccounts {
	return &MemoryAccounts{sessions: map[string]session{}, fails: map[string][]time.Time{}, now: time.Now}
}

func (m *MemoryAccounts) HasAdmin(context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.admin != nil, nil
}

func (m *MemoryAccounts) CreateAdmin(_ context.Context, email, password string) (*store.User, error) {
	if len([]rune(password)) < minPassword {
		return nil, ErrWeakPassword
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	hash, err := pbkdf2.Key(sha256.New, password, salt, memIterations, 32)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.admin != nil {
		return nil, ErrAdminExists
	}
	m.admin = &store.User{ID: 1, Email: email, PasswordHash: "pbkdf2-sha256", CreatedAt: m.now()}
	m.salt, m.hash = salt, hash
	return m.admin, nil
}

func (m *MemoryAccounts) Login(_ context.Context, email, password, remote string) (string, error) {
	m.mu.Lock()
	if m.limited("ip:"+remote) || m.limited("email:"+email) {
		m.mu.Unlock()
		return "", ErrRateLimited
	}
	admin, salt, want := m.admin, m.salt, m.hash
	m.mu.Unlock()
	ok := false
	if admin != nil {
		got, err := pbkdf2.Key(sha256.New, password, salt, memIterations, 32)
		ok = err == nil && subtle.ConstantTimeCompare(got, want) == 1 && email == admin.Email
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !ok {
		now := m.now()
		m.fails["ip:"+remote] = append(m.fails["ip:"+remote], now)
		m.fails["email:"+email] = append(m.fails["email:"+email], now)
		return "", ErrBadCredentials
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	v := hex.EncodeToString(b)
	m.sessions[sessionID(v)] = session{user: admin, expires: m.now().Add(memSessionTTL)}
	return v, nil
}

// limited reports whether key failed too often lately; m.mu is held.
func (m *MemoryAccounts) limited(key string) bool {
	cut := m.now().Add(-memFailWindow)
	recent := m.fails[key][:0]
	for _, t := range m.fails[key] {
		if t.After(cut) {
			recent = append(recent, t)
		}
	}
	m.fails[key] = recent
	return len(recent) >= memMaxFails
}

func (m *MemoryAccounts) Session(_ context.Context, v string) (*store.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[sessionID(v)]
	if !ok || m.now().After(s.expires) {
		delete(m.sessions, sessionID(v))
		return nil, ErrNoSession
	}
	return s.user, nil
}

func (m *MemoryAccounts) Logout(_ context.Context, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, sessionID(v))
	return nil
}

func sessionID(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}
