package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"mailout/internal/store"
)

// memAccounts is an in-memory accounts service for the handler tests:
// one admin, sessions by cookie value, and a sign-in limit of maxFails
// failures per address.
type memAccounts struct {
	mu       sync.Mutex
	admin    *store.User
	password string
	sessions map[string]*store.User
	fails    map[string]int
	maxFails int
}

var (
	errBadCredentials = errors.New("wrong email or password")
	errRateLimited    = errors.New("too many attempts")
	errAdminExists    = errors.New("admin exists")
	errNoSession      = errors.New("no session")
)

func newMemAccounts() *memAccounts {
	return &memAccounts{sessions: map[string]*store.User{}, fails: map[string]int{}, maxFails: 5}
}

func (m *memAccounts) HasAdmin(context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.admin != nil, nil
}

func (m *memAccounts) CreateAdmin(_ context.Context, email, password string) (*store.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.admin != nil {
		return nil, errAdminExists
	}
	if len(password) < 10 {
		return nil, errors.New("password too short")
	}
	m.admin = &store.User{ID: 1, Email: email, PasswordHash: "hash", CreatedAt: time.Now()}
	m.password = password
	return m.admin, nil
}

func (m *memAccounts) Login(_ context.Context, email, password, _ string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fails[email] >= m.maxFails {
		return "", errRateLimited
	}
	if m.admin == nil || email != m.admin.Email || password != m.password {
		m.fails[email]++
		return "", errBadCredentials
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	v := hex.EncodeToString(b)
	m.sessions[v] = m.admin
	return v, nil
}

func (m *memAccounts) Session(_ context.Context, v string) (*store.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.sessions[v]; u != nil {
		return u, nil
	}
	return nil, errNoSession
}

func (m *memAccounts) Logout(_ context.Context, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, v)
	return nil
}
