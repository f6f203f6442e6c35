// Package secret encrypts the secrets mailout keeps at rest (relay account
// passwords in the app's settings) with AES-256-GCM under one key that
// lives outside the database: in the environment variable
// MAILOUT_SECRET_KEY or in a key file. A copy of the database alone does
// not reveal them; a backup must include the key, or the sealed
// passwords are lost (they can be typed again).
//
// A sealed value is: a version byte (1), a random 12-byte nonce, and the
// GCM ciphertext with its 16-byte tag. Opening it with another key fails
// with ErrWrongKey, never with garbage.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnvVar names the environment variable that may hold the key, base64
// encoded (standard or URL alphabet, padded or not).
const EnvVar = "MAILOUT_SECRET_KEY"

// KeySize is the key's length in bytes (AES-256).
const KeySize = 32

const (
	version   byte = 1
	nonceSize      = 12
)

// ErrWrongKey is returned by Open when the value was sealed with another
// key (or altered): the configured secret key does not match the one the
// settings were saved with.
var ErrWrongKey = errors.New("the secret key does not match the one these secrets were sealed with")

// ErrMalformed is returned by Open for a value that is not a sealed
// value of a version this program knows.
var ErrMalformed = errors.New("not a sealed secret")

// ErrBadKey is returned for a key that is not 32 bytes of base64.
var ErrBadKey = errors.New("a secret key must be 32 bytes, base64 encoded")

// Key is an AES-256 key. Its String never shows the key.
type Key struct {
	aead cipher.AEAD
}

// String hides the key, so that a Key printed by mistake shows nothing.
func (k *Key) String() string { return "secret.Key(…)" }

// NewKey makes a Key of 32 raw bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("%w: got %d bytes", ErrBadKey, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Key{aead: aead}, nil
}

// Generate returns 32 random bytes for a new key.
func Generate() []byte {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// Parse reads a base64 key (as in MAILOUT_SECRET_KEY or a key file;
// surrounding white space is ignored).
func Parse(text string) (*Key, error) {
	text = strings.TrimSpace(text)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(text); err == nil {
			return NewKey(raw)
		}
	}
	return nil, ErrBadKey
}

// Encode is the text form of a raw key, as written to a key file.
func Encode(raw []byte) string { return base64.StdEncoding.EncodeToString(raw) }

// Seal encrypts plaintext with a fresh random nonce.
func (k *Key) Seal(plaintext []byte) []byte {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+k.aead.Overhead())
	out[0] = version
	_, _ = rand.Read(out[1 : 1+nonceSize])
	// The version byte is authenticated as additional data, so it cannot
	// be changed without Open noticing.
	return k.aead.Seal(out, out[1:1+nonceSize], plaintext, out[:1])
}

// Open decrypts a value made by Seal: ErrWrongKey when it was sealed
// with another key or altered, ErrMalformed when it is not a sealed value.
func (k *Key) Open(sealed []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+k.aead.Overhead() || sealed[0] != version {
		return nil, ErrMalformed
	}
	p, err := k.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], sealed[:1])
	if err != nil {
		return nil, ErrWrongKey
	}
	return p, nil
}

// Load returns the key from the environment variable MAILOUT_SECRET_KEY
// when it is set, else from the key file at path. A missing file is
// fs.ErrNotExist (wrapped).
func Load(path string) (*Key, error) {
	if v := os.Getenv(EnvVar); v != "" {
		k, err := Parse(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvVar, err)
		}
		return k, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	k, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreate is Load, except that when the variable is not set and no
// key file exists, it creates one at path (its folder too) holding a new
// random key, readable by this user only, and reports created = true so
// the caller can say where the key is and that a backup needs it.
func LoadOrCreate(path string) (k *Key, created bool, err error) {
	k, err = Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("secret key: %w", err)
	}
	raw := Generate()
	// O_EXCL: two processes starting at once must not each write a key
	// and seal with different ones; the loser reads the winner's file.
	if err := writeKeyFile(path, []byte(Encode(raw)+"\n")); err != nil {
		if errors.Is(err, fs.ErrExist) {
			k, err = Load(path)
			return k, false, err
		}
		return nil, false, fmt.Errorf("secret key: %w", err)
	}
	k, err = NewKey(raw)
	return k, err == nil, err
}

// writeKeyFile creates path, failing when it exists, with mode 0600 and
// data synced to disk.
//
// On Windows the mode only sets or clears the read-only attribute: who may
// read the file is decided by the access-control list it inherits from its
// folder. A key file in the user's own profile folder (the default,
// DefaultKeyPath) inherits an ACL that grants access to that user, the
// administrators and SYSTEM only; a key file put elsewhere must be in a
// folder with such an ACL.
func writeKeyFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// DefaultKeyPath is a per-user place for a key file (serve keeps its key
// beside the database instead): mailout/secret.key in
// the user's configuration folder (~/.config on Linux, ~/Library/Application
// Support on macOS, %AppData% on Windows — a folder only its user can read).
func DefaultKeyPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("secret key: %w", err)
	}
	return filepath.Join(dir, "mailout", "secret.key"), nil
}
