package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"mailout/internal/store"
)

// Users: the email is unique whatever its case, lookups ignore case, and a
// user reads back as stored.
func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.UserByEmail(ctx, "nobody@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByEmail(unknown) = %v, want ErrNotFound", err)
	}
	if us, err := s.Users(ctx); err != nil || len(us) != 0 {
		t.Fatalf("Users on an empty store = %v, %v", us, err)
	}
	before := msNow()
	a := &store.User{Email: "Admin@Example.org", PasswordHash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"}
	if err := s.CreateUser(ctx, a); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if a.ID == 0 || a.CreatedAt.Before(before) {
		t.Fatalf("CreateUser set ID %d, CreatedAt %v (before %v)", a.ID, a.CreatedAt, before)
	}
	if err := s.CreateUser(ctx, &store.User{Email: "admin@example.ORG", PasswordHash: "x"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateUser with the same email in another case = %v, want ErrExists", err)
	}
	b := &store.User{Email: "second@example.org", PasswordHash: "y"}
	if err := s.CreateUser(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByEmail(ctx, "admin@EXAMPLE.org")
	if err != nil {
		t.Fatalf("UserByEmail in another case: %v", err)
	}
	if got.ID != a.ID || got.Email != a.Email || got.PasswordHash != a.PasswordHash || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("UserByEmail = %+v, want %+v", got, a)
	}
	if got, err := s.User(ctx, b.ID); err != nil || got.Email != b.Email {
		t.Errorf("User(%d) = %+v, %v", b.ID, got, err)
	}
	if _, err := s.User(ctx, b.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("User(unknown) = %v, want ErrNotFound", err)
	}
	us, err := s.Users(ctx)
	if err != nil || len(us) != 2 || us[0].ID != a.ID || us[1].ID != b.ID {
		t.Errorf("Users = %+v, %v; want %d then %d", us, err, a.ID, b.ID)
	}
}

// Sessions are found by their id until deleted; DeleteExpiredSessions
// removes those whose end is not after now, and only those.
func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := &store.User{Email: "a@example.org", PasswordHash: "h"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	now := msNow()
	old := &store.Session{ID: "old", UserID: u.ID, CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	cur := &store.Session{ID: "cur", UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	for _, x := range []*store.Session{old, cur} {
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatalf("CreateSession(%s): %v", x.ID, err)
		}
	}
	got, err := s.Session(ctx, "cur")
	if err != nil || got.UserID != u.ID || !got.CreatedAt.Equal(cur.CreatedAt) || !got.ExpiresAt.Equal(cur.ExpiresAt) {
		t.Fatalf("Session(cur) = %+v, %v; want %+v", got, err, cur)
	}
	if _, err := s.Session(ctx, "none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Session(unknown) = %v, want ErrNotFound", err)
	}
	if n, err := s.DeleteExpiredSessions(ctx, now); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
	}
	if _, err := s.Session(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired session still there: %v", err)
	}
	if err := s.DeleteSession(ctx, "cur"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := s.Session(ctx, "cur"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted session still there: %v", err)
	}
	if err := s.DeleteSession(ctx, "cur"); err != nil {
		t.Errorf("DeleteSession twice: %v", err)
	}
}

// API tokens: unique names and hashes, found by hash, listed by name,
// touched and deleted by id.
func testTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	before := msNow()
	b := &store.APIToken{Name: "deploy", Hash: "h-deploy"}
	a := &store.APIToken{Name: "ci", Hash: "h-ci"}
	for _, x := range []*store.APIToken{b, a} {
		if err := s.CreateToken(ctx, x); err != nil {
			t.Fatalf("CreateToken(%s): %v", x.Name, err)
		}
		if x.ID == 0 || x.CreatedAt.Before(before) || !x.LastUsed.IsZero() {
			t.Fatalf("CreateToken set %+v", x)
		}
	}
	for _, dup := range []*store.APIToken{{Name: "ci", Hash: "other"}, {Name: "other", Hash: "h-ci"}} {
		if err := s.CreateToken(ctx, dup); !errors.Is(err, store.ErrExists) {
			t.Errorf("CreateToken(%+v) = %v, want ErrExists", dup, err)
		}
	}
	got, err := s.TokenByHash(ctx, "h-deploy")
	if err != nil || got.ID != b.ID || got.Name != "deploy" || !got.CreatedAt.Equal(b.CreatedAt) {
		t.Fatalf("TokenByHash = %+v, %v", got, err)
	}
	if _, err := s.TokenByHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TokenByHash(unknown) = %v, want ErrNotFound", err)
	}
	used := msNow().Add(time.Minute)
	if err := s.TouchToken(ctx, b.ID, used); err != nil {
		t.Fatalf("TouchToken: %v", err)
	}
	if got, _ := s.TokenByHash(ctx, "h-deploy"); got == nil || !got.LastUsed.Equal(used) {
		t.Errorf("after TouchToken LastUsed = %+v, want %v", got, used)
	}
	ts, err := s.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range ts {
		names = append(names, x.Name)
	}
	if !slices.Equal(names, []string{"ci", "deploy"}) {
		t.Errorf("Tokens = %v, want ci, deploy (by name)", names)
	}
	if err := s.DeleteToken(ctx, a.ID); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	if _, err := s.TokenByHash(ctx, "h-ci"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted token still found: %v", err)
	}
	if err := s.DeleteToken(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteToken twice = %v, want ErrNotFound", err)
	}
	if err := s.TouchToken(ctx, a.ID, used); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TouchToken(deleted) = %v, want ErrNotFound", err)
	}
}

// Settings: a key never put is ErrNotFound; a put value reads back byte
// for byte and a second put replaces it.
func testSettings(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Setting(ctx, "relays"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Setting(never put) = %v, want ErrNotFound", err)
	}
	v1 := []byte{0, 1, 2, 0xff, '{', '}'}
	if err := s.PutSetting(ctx, "relays", v1); err != nil {
		t.Fatalf("PutSetting: %v", err)
	}
	if got, err := s.Setting(ctx, "relays"); err != nil || !slices.Equal(got, v1) {
		t.Fatalf("Setting = %v, %v; want %v", got, err, v1)
	}
	if err := s.PutSetting(ctx, "relays", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Setting(ctx, "relays"); err != nil || string(got) != "v2" {
		t.Errorf("Setting after a second put = %q, %v; want v2", got, err)
	}
	if err := s.PutSetting(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Setting(ctx, "empty"); err != nil || len(got) != 0 {
		t.Errorf("Setting(empty) = %q, %v", got, err)
	}

	// AddSetting: of processes that store a first value at once, every
	// one gets back the value stored first, and it is the one kept.
	kept := make([][]byte, 8)
	errs := make([]error, len(kept))
	var wg sync.WaitGroup
	for i := range kept {
		wg.Go(func() { kept[i], errs[i] = s.AddSetting(ctx, "key", []byte{byte(i)}) })
	}
	wg.Wait()
	stored, err := s.Setting(ctx, "key")
	if err != nil {
		t.Fatal(err)
	}
	for i := range kept {
		if errs[i] != nil || !slices.Equal(kept[i], stored) {
			t.Fatalf("AddSetting %d = %v, %v; every caller must get the stored %v", i, kept[i], errs[i], stored)
		}
	}
	if got, err := s.AddSetting(ctx, "relays", []byte("v3")); err != nil || string(got) != "v2" {
		t.Errorf("AddSetting over a value = %q, %v; want v2 kept", got, err)
	}
}
