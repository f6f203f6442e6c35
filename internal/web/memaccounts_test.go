package web

import (
	"errors"
	"testing"
	"time"
)

// MemoryAccounts: one admin, a session per sign-in that ends on logout or
// after its time, and a limit on failed sign-ins.
func TestMemoryAccounts(t *testing.T) {
	ctx := t.Context()
	m := NewMemoryAccounts()
	now := time.Now()
	m.now = func() time.Time { return now }
	if _, err := m.CreateAdmin(ctx, adminEmail, "short"); !errors.Is(err, ErrWeakPassword) {
		t.Errorf("short password: %v", err)
	}
	if _, err := m.CreateAdmin(ctx, adminEmail, adminPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateAdmin(ctx, "x@example.org", adminPassword); !errors.Is(err, ErrAdminExists) {
		t.Errorf("second admin: %v", err)
	}
	v, err := m.Login(ctx, adminEmail, adminPassword, "127.0.0.1")
	if err != nil || len(v) < 32 {
		t.Fatalf("login: %q %v", v, err)
	}
	for k := range m.sessions {
		if k == v {
			t.Error("the session is kept under its cookie value")
		}
	}
	if u, err := m.Session(ctx, v); err != nil || u.Email != adminEmail {
		t.Errorf("session: %v %v", u, err)
	}
	now = now.Add(memSessionTTL + time.Second)
	if _, err := m.Session(ctx, v); !errors.Is(err, ErrNoSession) {
		t.Errorf("expired session: %v", err)
	}
	v, _ = m.Login(ctx, adminEmail, adminPassword, "127.0.0.1")
	_ = m.Logout(ctx, v)
	if _, err := m.Session(ctx, v); !errors.Is(err, ErrNoSession) {
		t.Errorf("after logout: %v", err)
	}
	for range memMaxFails {
		if _, err := m.Login(ctx, adminEmail, "wrong password", "127.0.0.2"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := m.Login(ctx, adminEmail, adminPassword, "127.0.0.3"); !errors.Is(err, ErrRateLimited) {
		t.Errorf("after %d failures for the address: %v, want rate limited", memMaxFails, err)
	}
	now = now.Add(memFailWindow + time.Second)
	if _, err := m.Login(ctx, adminEmail, adminPassword, "127.0.0.2"); err != nil {
		t.Errorf("after the window: %v", err)
	}
}
