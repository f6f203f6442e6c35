package secret

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func mustKey(t *testing.T) *Key {
	t.Helper()
	k, err := NewKey(Generate())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A sealed value opens with its key, carries no plaintext, and two seals
// of the same value differ (fresh nonce).
func TestSealOpen(t *testing.T) {
	k := mustKey(t)
	plain := []byte("relay-password-123")
	a, b := k.Seal(plain), k.Seal(plain)
	if bytes.Contains(a, plain) {
		t.Fatal("sealed value contains the plaintext")
	}
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
	if a[0] != version || len(a) != 1+nonceSize+len(plain)+16 {
		t.Fatalf("sealed value: version %d, %d bytes", a[0], len(a))
	}
	got, err := k.Open(a)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

// Another key, an altered value or a changed version byte are refused
// with a typed error, never opened to garbage.
func TestWrongKeyRefused(t *testing.T) {
	k, other := mustKey(t), mustKey(t)
	sealed := k.Seal([]byte("secret"))
	if _, err := other.Open(sealed); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with another key = %v, want ErrWrongKey", err)
	}
	altered := bytes.Clone(sealed)
	altered[len(altered)-1] ^= 1
	if _, err := k.Open(altered); !errors.Is(err, ErrWrongKey) {
		t.Errorf("Open of an altered value = %v, want ErrWrongKey", err)
	}
	v2 := bytes.Clone(sealed)
	v2[0] = 2
	if _, err := k.Open(v2); !errors.Is(err, ErrMalformed) {
		t.Errorf("Open of version 2 = %v, want ErrMalformed", err)
	}
	if _, err := k.Open([]byte("secret")); !errors.Is(err, ErrMalformed) {
		t.Errorf("Open of a plain value = %v, want ErrMalformed", err)
	}
}

// The environment variable wins over the key file; a key that is not 32
// bytes of base64 is refused.
func TestLoadFromEnv(t *testing.T) {
	raw := Generate()
	t.Setenv(EnvVar, Encode(raw))
	k, err := Load(filepath.Join(t.TempDir(), "absent.key"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	ref, _ := NewKey(raw)
	if got, err := k.Open(ref.Seal([]byte("x"))); err != nil || string(got) != "x" {
		t.Fatalf("key from %s does not open what its bytes sealed: %v", EnvVar, err)
	}
	t.Setenv(EnvVar, Encode(raw[:16]))
	if _, err := Load(""); !errors.Is(err, ErrBadKey) {
		t.Errorf("Load of a 16-byte key = %v, want ErrBadKey", err)
	}
	t.Setenv(EnvVar, "not base64!")
	if _, err := Load(""); !errors.Is(err, ErrBadKey) {
		t.Errorf("Load of a non-base64 key = %v, want ErrBadKey", err)
	}
}

// LoadOrCreate creates a key file readable by its owner only the first
// time, reports it, and loads the same key afterwards.
func TestLoadOrCreate(t *testing.T) {
	t.Setenv(EnvVar, "")
	path := filepath.Join(t.TempDir(), "conf", "mailout", "secret.key")
	if _, err := Load(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load without a file = %v, want fs.ErrNotExist", err)
	}
	k1, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate = created %v, %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if _, err := Parse(string(b)); err != nil || !strings.HasSuffix(string(b), "\n") {
		t.Errorf("key file %q: %v", b, err)
	}
	k2, created, err := LoadOrCreate(path)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate = created %v, %v", created, err)
	}
	if got, err := k2.Open(k1.Seal([]byte("same"))); err != nil || string(got) != "same" {
		t.Errorf("second LoadOrCreate loaded another key: %v", err)
	}
}

// A Key printed by mistake shows nothing of the key.
func TestKeyNotPrinted(t *testing.T) {
	raw := Generate()
	k, _ := NewKey(raw)
	if s := k.String(); strings.Contains(s, Encode(raw)) || strings.Contains(s, string(raw)) {
		t.Errorf("String() = %q shows the key", s)
	}
}
