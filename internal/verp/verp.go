// Package verp builds and reads the variable envelope return paths (VERP)
// mailout sends with when a campaign has a return path: the envelope
// sender of each message is the return path with a token after a "+" in
// its local part (bounces+TOKEN@example.com), so a bounce that comes back
// to that address names the one delivery it is about.
//
// A token is the campaign id, the delivery id and the attempt number
// (unsigned varints) followed by the first 10 bytes of their HMAC-SHA256
// under a key mailout keeps in its database, in lower-case base32 without
// padding: letters and digits only, safe in a local part (RFC 5321 §4.1.2
// Dot-string) and in a URL, unchanged by a server that lower-cases local
// parts. It holds no address, and cannot be forged or altered without the
// key.
package verp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"mailout/internal/store"
)

// KeySize is the HMAC key's length in bytes.
const KeySize = 32

// macSize is how much of the HMAC a token carries.
const macSize = 10

// SettingKey is the settings table key the per-database VERP key is kept
// under.
const SettingKey = "verp-key"

// ErrNoToken is returned by Parse for an address without a token.
var ErrNoToken = errors.New("verp: the address carries no token")

// ErrBadToken is returned by Parse for a token that is malformed, altered,
// or signed with another key.
var ErrBadToken = errors.New("verp: the token is not valid")

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Ref is the delivery a token stands for.
type Ref struct {
	CampaignID int64
	DeliveryID int64
	Attempt    int
}

// Signer makes and checks tokens under one key.
type Signer struct {
	key []byte
}

// String hides the key.
func (s *Signer) String() string { return "verp.Signer(…)" }

// NewSigner returns a Signer for key (KeySize bytes).
func NewSigner(key []byte) (*Signer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("verp: key must be %d bytes, not %d", KeySize, len(key))
	}
	return &Signer{key: bytes.Clone(key)}, nil
}

// Token returns the token of ref.
func (s *Signer) Token(ref Ref) string {
	var b []byte
	b = binary.AppendUvarint(b, uint64(ref.CampaignID))
	b = binary.AppendUvarint(b, uint64(ref.DeliveryID))
	b = binary.AppendUvarint(b, uint64(ref.Attempt))
	b = append(b, s.mac(b)...)
	return enc.EncodeToString(b)
}

func (s *Signer) mac(b []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("mailout-verp-1\x00"))
	m.Write(b)
	return m.Sum(nil)[:macSize]
}

// Verify returns the delivery the token stands for.
func (s *Signer) Verify(token string) (Ref, error) {
	b, err := enc.DecodeString(strings.ToLower(token))
	if err != nil || len(b) <= macSize {
		return Ref{}, ErrBadToken
	}
	body, sum := b[:len(b)-macSize], b[len(b)-macSize:]
	if !hmac.Equal(sum, s.mac(body)) {
		return Ref{}, ErrBadToken
	}
	var vals [3]uint64
	rest := body
	for i := range vals {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return Ref{}, ErrBadToken
		}
		vals[i], rest = v, rest[n:]
	}
	if len(rest) != 0 || vals[0] > 1<<62 || vals[1] > 1<<62 || vals[2] > 1<<30 {
		return Ref{}, ErrBadToken
	}
	return Ref{CampaignID: int64(vals[0]), DeliveryID: int64(vals[1]), Attempt: int(vals[2])}, nil
}

// Address returns the envelope sender for ref: returnPath with "+TOKEN"
// added to its local part.
func (s *Signer) Address(returnPath string, ref Ref) string {
	i := strings.LastIndexByte(returnPath, '@')
	if i < 0 {
		return returnPath + "+" + s.Token(ref)
	}
	return returnPath[:i] + "+" + s.Token(ref) + returnPath[i:]
}

// TokenOf returns the token of a VERP address (the part after the last
// "+" of its local part), or ErrNoToken.
func TokenOf(address string) (string, error) {
	address = strings.Trim(strings.TrimSpace(address), "<>")
	local := address
	if i := strings.LastIndexByte(address, '@'); i >= 0 {
		local = address[:i]
	}
	j := strings.LastIndexByte(local, '+')
	if j < 0 || j == len(local)-1 {
		return "", ErrNoToken
	}
	return local[j+1:], nil
}

// Parse returns the delivery a VERP address stands for.
func (s *Signer) Parse(address string) (Ref, error) {
	tok, err := TokenOf(address)
	if err != nil {
		return Ref{}, err
	}
	return s.Verify(tok)
}

// Settings is where the key is kept: store.Accounts has these methods.
type Settings interface {
	Setting(ctx context.Context, key string) ([]byte, error)
	AddSetting(ctx context.Context, key string, value []byte) ([]byte, error)
}

// LoadOrCreate returns the Signer of the database's key, making and
// storing a random key the first time.
func LoadOrCreate(ctx context.Context, st Settings) (*Signer, error) {
	key, err := st.Setting(ctx, SettingKey)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		key = make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("verp: new key: %w", err)
		}
		// Processes that make the first key at once (the workers of a
		// fleet) all keep the one stored first.
		if key, err = st.AddSetting(ctx, SettingKey, key); err != nil {
			return nil, fmt.Errorf("verp: store key: %w", err)
		}
	default:
		return nil, fmt.Errorf("verp: key: %w", err)
	}
	return NewSigner(key)
}
