package account

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// HashParams are the argon2id cost parameters of new password hashes.
// A stored hash keeps its own parameters, so raising them later does not
// lock anyone out.
type HashParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultHashParams: 64 MiB, 3 passes, 2 lanes — about 100 ms on one
// core of the 2-core build machine, within the RFC 9106 §7.4 second
// recommended option's memory (64 MiB) with t=3.
var DefaultHashParams = HashParams{Memory: 64 * 1024, Time: 3, Threads: 2}

const (
	saltLen = 16
	hashLen = 32
	// MinPasswordLen is the shortest password accepted, in characters.
	MinPasswordLen = 10
	// MaxPasswordLen bounds the work one login asks of the server.
	MaxPasswordLen = 1024
)

// ErrPasswordTooShort and ErrPasswordTooLong are the password rules a
// new password must meet.
var (
	ErrPasswordTooShort = fmt.Errorf("the password must have at least %d characters", MinPasswordLen)
	ErrPasswordTooLong  = fmt.Errorf("the password must have at most %d bytes", MaxPasswordLen)
)

// errBadHash is a stored hash this package cannot read.
var errBadHash = errors.New("stored password hash is not an argon2id PHC string")

// CheckPassword applies the password rules.
func CheckPassword(password string) error {
	switch {
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return ErrPasswordTooShort
	case len(password) > MaxPasswordLen:
		return ErrPasswordTooLong
	}
	return nil
}

var b64 = base64.RawStdEncoding

// hashPassword returns the argon2id hash of password in PHC string form:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash> (RFC 9106; salt and hash
// in unpadded standard base64, as the PHC string format asks).
func hashPassword(password string, p HashParams) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, hashLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// verifyArgon2id reports whether password matches the PHC hash, comparing
// in constant time.
var verifyPassword = verifyArgon2id

func verifyArgon2id(password, phc string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var v int
	var p HashParams
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || p.Time == 0 || p.Threads == 0 {
		return false, errBadHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
