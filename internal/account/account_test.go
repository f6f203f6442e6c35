package account

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mailout/internal/store"
	"mailout/internal/store/sqlite"
)

// clock is a settable clock for the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cheap keeps the tests fast; the production parameters are checked in
// TestDefaultHashFormat.
var cheap = HashParams{Memory: 64, Time: 1, Threads: 1}

type fixture struct {
	svc   *Service
	st    *sqlite.DB
	clk   *clock
	dir   string
	admin *store.User
}

const (
	adminEmail = "admin@example.org"
	adminPass  = "correct horse battery"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "mailout.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.UnixMilli(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC).UnixMilli())}
	svc := New(st, Options{Now: clk.Now, Hash: cheap})
	u, err := svc.CreateAdmin(context.Background(), adminEmail, adminPass)
	if err != nil {
		t.Fatalf("CreateAdmin: %v", err)
	}
	return &fixture{svc: svc, st: st, clk: clk, dir: dir, admin: u}
}

// dbBytes closes the store (which checkpoints the write-ahead log into the
// file) and returns the bytes of every file of the database.
func (f *fixture) dbBytes(t *testing.T) []byte {
	t.Helper()
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	var all []byte
	matches, _ := filepath.Glob(filepath.Join(f.dir, "mailout.db*"))
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("no database file")
	}
	return all
}

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

// The stored hash is an argon2id PHC string that does not contain the
// password, and the password is nowhere in the database file.
func TestPasswordStoredAsHashOnly(t *testing.T) {
	f := newFixture(t)
	u, err := f.st.UserByEmail(context.Background(), adminEmail)
	if err != nil {
		t.Fatal(err)
	}
	if !phc.MatchString(u.PasswordHash) || !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("stored hash %q is not an argon2id PHC string with the service's parameters", u.PasswordHash)
	}
	if strings.Contains(u.PasswordHash, adminPass) {
		t.Fatal("stored hash contains the password")
	}
	if bytes.Contains(f.dbBytes(t), []byte(adminPass)) {
		t.Fatal("the database file contains the password in clear")
	}
}

// The production parameters are the ones documented.
func TestDefaultHashFormat(t *testing.T) {
	h := hashPassword("a long enough password", DefaultHashParams)
	if !phc.MatchString(h) || !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("hash %q", h)
	}
	if ok, err := verifyPassword("a long enough password", h); !ok || err != nil {
		t.Fatalf("verify = %v, %v", ok, err)
	}
	if ok, err := verifyPassword("a long enough passworD", h); ok || err != nil {
		t.Fatalf("verify of a wrong password = %v, %v", ok, err)
	}
}

func TestCreateAdminRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if has, err := f.svc.HasAdmin(ctx); !has || err != nil {
		t.Fatalf("HasAdmin = %v, %v", has, err)
	}
	if _, err := f.svc.CreateAdmin(ctx, "other@example.org", "another long password"); !errors.Is(err, ErrAdminExists) {
		t.Errorf("second CreateAdmin = %v, want ErrAdminExists", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fresh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fresh := New(st, Options{Hash: cheap})
	if has, err := fresh.HasAdmin(ctx); has || err != nil {
		t.Fatalf("HasAdmin on a new database = %v, %v", has, err)
	}
	if _, err := fresh.CreateAdmin(ctx, adminEmail, "123456789"); !errors.Is(err, ErrPasswordTooShort) {
		t.Errorf("9-character password: %v, want ErrPasswordTooShort", err)
	}
	if _, err := fresh.CreateAdmin(ctx, "not an address", adminPass); !errors.Is(err, ErrBadEmail) {
		t.Errorf("bad email: %v, want ErrBadEmail", err)
	}
	if _, err := fresh.CreateAdmin(ctx, "jefa@bücher.example", "ñandú ñandú"); err != nil { // 11 characters, 15 bytes
		t.Fatalf("10+ characters: %v", err)
	}
	// The domain is kept in A-labels; either form signs in.
	for _, email := range []string{"jefa@bücher.example", "JEFA@xn--bcher-kva.example"} {
		if _, err := fresh.Login(ctx, email, "ñandú ñandú", "127.0.0.1"); err != nil {
			t.Errorf("Login(%q): %v", email, err)
		}
	}
}

// A login gives a cookie value that opens the session; only its SHA-256
// is stored, the value is nowhere in the database file; logout ends it.
func TestSessionCookieNotStored(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Login(ctx, adminEmail, "wrong password!", "127.0.0.1:5000"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	cookie, err := f.svc.Login(ctx, "ADMIN@example.org", adminPass, "127.0.0.1:5000")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if len(cookie) != 43 || strings.ContainsAny(cookie, "+/=") {
		t.Errorf("cookie %q is not 32 bytes of unpadded base64url", cookie)
	}
	u, err := f.svc.Session(ctx, cookie)
	if err != nil || u.ID != f.admin.ID {
		t.Fatalf("Session = %+v, %v", u, err)
	}
	sum := sha256.Sum256([]byte(cookie))
	if s, err := f.st.Session(ctx, hex.EncodeToString(sum[:])); err != nil || s.UserID != f.admin.ID ||
		!s.ExpiresAt.Equal(f.clk.Now().Add(14*24*time.Hour)) {
		t.Fatalf("stored session = %+v, %v; want the SHA-256 of the cookie, 14 days", s, err)
	}
	if _, err := f.svc.Session(ctx, cookie+"x"); !errors.Is(err, ErrNoSession) {
		t.Errorf("another cookie: %v, want ErrNoSession", err)
	}
	other, err := f.svc.Login(ctx, adminEmail, adminPass, "127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Logout(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Session(ctx, other); !errors.Is(err, ErrNoSession) {
		t.Errorf("after Logout: %v, want ErrNoSession", err)
	}
	if db := f.dbBytes(t); bytes.Contains(db, []byte(cookie)) {
		t.Fatal("the database file contains the session cookie value")
	}
}

// A session ends after its TTL.
func TestSessionExpires(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cookie, err := f.svc.Login(ctx, adminEmail, adminPass, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Add(14*24*time.Hour - time.Millisecond)
	if _, err := f.svc.Session(ctx, cookie); err != nil {
		t.Fatalf("just before the end: %v", err)
	}
	f.clk.Add(time.Millisecond)
	if _, err := f.svc.Session(ctx, cookie); !errors.Is(err, ErrNoSession) {
		t.Fatalf("at the end: %v, want ErrNoSession", err)
	}
}

// Five failures for one email: the sixth attempt is refused, even with
// the right password, until fifteen minutes after the first failure.
func TestLoginRateLimitPerEmail(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 5 {
		f.clk.Add(time.Second)
		remote := "127.0.0." + string(rune('1'+i)) // a new address each time: the email's limit applies
		if _, err := f.svc.Login(ctx, adminEmail, "wrong password!", remote); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v, want ErrBadCredentials", i+1, err)
		}
	}
	first := f.clk.Now().Add(-4 * time.Second)
	if _, err := f.svc.Login(ctx, adminEmail, adminPass, "127.0.0.9"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("6th attempt: %v, want ErrRateLimited", err)
	}
	f.clk.Add(first.Add(15*time.Minute - time.Millisecond).Sub(f.clk.Now()))
	if _, err := f.svc.Login(ctx, adminEmail, adminPass, "127.0.0.9"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("just before the first failure leaves the window: %v, want ErrRateLimited", err)
	}
	f.clk.Add(time.Millisecond)
	if _, err := f.svc.Login(ctx, adminEmail, adminPass, "127.0.0.9"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// Five failures from one address, each for another email: the sixth
// attempt from that address is refused; another address is not.
func TestLoginRateLimitPerRemote(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 5 {
		email := string(rune('a'+i)) + "@example.org"
		if _, err := f.svc.Login(ctx, email, "whatever password", "127.0.0.7:"+string(rune('1'+i))); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := f.svc.Login(ctx, adminEmail, adminPass, "127.0.0.7:9"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("6th attempt from the address: %v, want ErrRateLimited", err)
	}
	if _, err := f.svc.Login(ctx, adminEmail, adminPass, "127.0.0.8:9"); err != nil {
		t.Fatalf("from another address: %v", err)
	}
	f.clk.Add(15*time.Minute + time.Millisecond)
	if _, err := f.svc.Login(ctx, adminEmail, adminPass, "127.0.0.7:9"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// A login for an unknown email checks the password against a hash made
// with the same parameters as a real one, so it costs the same time.
func TestUnknownEmailCostsAHash(t *testing.T) {
	f := newFixture(t)
	var checked []string
	verifyPassword = func(password, hash string) (bool, error) {
		checked = append(checked, hash)
		return verifyArgon2id(password, hash)
	}
	t.Cleanup(func() { verifyPassword = verifyArgon2id })
	ctx := context.Background()
	if _, err := f.svc.Login(ctx, "nobody@example.org", adminPass, "127.0.0.1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown email: %v, want ErrBadCredentials", err)
	}
	if _, err := f.svc.Login(ctx, adminEmail, "wrong password!", "127.0.0.1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v, want ErrBadCredentials", err)
	}
	if len(checked) != 2 {
		t.Fatalf("%d hashes checked for an unknown email and a wrong password, want 2", len(checked))
	}
	params := func(h string) string { return strings.Join(strings.Split(h, "$")[:4], "$") }
	if params(checked[0]) != params(checked[1]) || checked[0] == checked[1] {
		t.Errorf("unknown email checked %q, known %q: want another hash with the same parameters", checked[0], checked[1])
	}
}

// A token is "mo_" and 32 random bytes, shown once: only its SHA-256 is
// stored; CheckToken accepts it and records the use; a deleted token is
// refused.
func TestTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, err := f.svc.CreateToken(ctx, "deploy")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "mo_") || len(tok) != 3+43 {
		t.Fatalf("token %q", tok)
	}
	if _, err := f.svc.CreateToken(ctx, "deploy"); !errors.Is(err, store.ErrExists) {
		t.Errorf("same name again: %v, want store.ErrExists", err)
	}
	if _, err := f.svc.CreateToken(ctx, "two words"); !errors.Is(err, ErrBadTokenName) {
		t.Errorf("name with a space: %v, want ErrBadTokenName", err)
	}
	f.clk.Add(time.Hour)
	got, err := f.svc.CheckToken(ctx, tok)
	if err != nil || got.Name != "deploy" {
		t.Fatalf("CheckToken = %+v, %v", got, err)
	}
	ts, err := f.svc.Tokens(ctx)
	if err != nil || len(ts) != 1 || !ts[0].LastUsed.Equal(f.clk.Now()) {
		t.Fatalf("after use Tokens = %+v, %v; want LastUsed %v", ts, err, f.clk.Now())
	}
	for _, bad := range []string{"", tok[3:], tok + "x", "mo_" + strings.Repeat("A", 43)} {
		if _, err := f.svc.CheckToken(ctx, bad); !errors.Is(err, ErrNoToken) {
			t.Errorf("CheckToken(%q) = %v, want ErrNoToken", bad, err)
		}
	}
	keep, err := f.svc.CreateToken(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteToken(ctx, "deploy"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CheckToken(ctx, tok); !errors.Is(err, ErrNoToken) {
		t.Errorf("deleted token: %v, want ErrNoToken", err)
	}
	if err := f.svc.DeleteToken(ctx, "deploy"); !errors.Is(err, ErrNoToken) {
		t.Errorf("deleting twice: %v, want ErrNoToken", err)
	}
	db := f.dbBytes(t)
	if bytes.Contains(db, []byte(keep)) || bytes.Contains(db, []byte(keep[3:])) {
		t.Fatal("the database file contains a token in clear")
	}
}
