package unsubscribe

import (
	"context"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailout/internal/store/sqlite"
)

func testKey(t *testing.T, b byte) *Key {
	t.Helper()
	k, err := NewKey([]byte(strings.Repeat(string(rune(b)), keySize)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTokenRoundTrip(t *testing.T) {
	k := testKey(t, 'a')
	for _, ids := range [][2]int64{{1, 1}, {7, 123456}, {1 << 40, 1 << 50}} {
		tok := k.Token(ids[0], ids[1])
		c, d, err := k.Parse(tok)
		if err != nil || c != ids[0] || d != ids[1] {
			t.Errorf("Parse(Token(%d, %d)) = %d, %d, %v", ids[0], ids[1], c, d, err)
		}
		if strings.ContainsAny(tok, "+/=@") {
			t.Errorf("token %q is not base64url without padding", tok)
		}
	}
}

// Every altered token is refused: each bit flipped, truncated, extended,
// made with another key, or naming another delivery with the old MAC.
func TestTokenForgedOrAltered(t *testing.T) {
	k := testKey(t, 'a')
	tok := k.Token(3, 42)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for i := range raw {
		for bit := range 8 {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			if _, _, err := k.Parse(base64.RawURLEncoding.EncodeToString(b)); !errors.Is(err, ErrBadToken) {
				t.Fatalf("byte %d bit %d flipped: err = %v, want ErrBadToken", i, bit, err)
			}
		}
	}
	// The last character's unused bits: another string, the same bytes.
	last := strings.IndexByte(base64URL, tok[len(tok)-1])
	if len(raw)*8%6 != 0 {
		if _, _, err := k.Parse(tok[:len(tok)-1] + string(base64URL[last^1])); !errors.Is(err, ErrBadToken) {
			t.Errorf("a token with a padding bit set is accepted: %v", err)
		}
	}
	other := testKey(t, 'b').Token(3, 42)
	for _, bad := range []string{"", "x", tok[:len(tok)-1], tok + "A", other, "%%%", strings.Repeat("A", 200),
		k.Token(3, 43)[:4] + tok[4:]} {
		if _, _, err := k.Parse(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("Parse(%q) err = %v, want ErrBadToken", bad, err)
		}
	}
}

const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestConfirm(t *testing.T) {
	k := testKey(t, 'a')
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tok := k.Token(1, 2)
	v := k.Confirm(tok, now)
	if !k.CheckConfirm(tok, v, now.Add(time.Hour)) {
		t.Fatal("a fresh confirmation field is refused")
	}
	if k.CheckConfirm(k.Token(1, 3), v, now) {
		t.Error("a confirmation field for another token is accepted")
	}
	if k.CheckConfirm(tok, v, now.Add(25*time.Hour)) {
		t.Error("a confirmation field older than a day is accepted")
	}
	if k.CheckConfirm(tok, v+"x", now) || k.CheckConfirm(tok, "", now) {
		t.Error("an altered confirmation field is accepted")
	}
}

func TestCheckPublicURL(t *testing.T) {
	good := map[string]string{
		"https://mail.example.com":       "https://mail.example.com",
		"https://mail.example.com/":      "https://mail.example.com",
		"https://example.com/mailout/":   "https://example.com/mailout",
		"http://127.0.0.1:8080":          "http://127.0.0.1:8080",
		"http://localhost:8080":          "http://localhost:8080",
		"http://[::1]:8080":              "http://[::1]:8080",
		"https://mail.example.com:8443/": "https://mail.example.com:8443",
	}
	for in, want := range good {
		got, err := CheckPublicURL(in)
		if err != nil || got != want {
			t.Errorf("CheckPublicURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"http://mail.example.com", "http://192.0.2.1", "ftp://example.com", "example.com",
		"https://", "https://u:p@example.com", "https://example.com/?a=b", "https://example.com/#x", "mailto:a@example.com"} {
		if _, err := CheckPublicURL(in); !errors.Is(err, ErrPublicURL) {
			t.Errorf("CheckPublicURL(%q) err = %v, want ErrPublicURL", in, err)
		}
	}
}

// The key is made once per database and the same after reopening it.
func TestLoadKeyKeptInDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	k1, err := LoadKey(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	tok := k1.Token(1, 1)
	db.Close()
	db, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	k2, err := LoadKey(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := k2.Parse(tok); err != nil {
		t.Fatalf("a token made before reopening the database is refused: %v", err)
	}
	if strings.Contains(k2.String(), string(k2.raw)) {
		t.Error("String shows the key")
	}
	other, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "other.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	k3, err := LoadKey(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := k3.Parse(tok); !errors.Is(err, ErrBadToken) {
		t.Errorf("another database's key accepts the token: %v", err)
	}
}
