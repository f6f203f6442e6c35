package dkim

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Key-size limits for RSA signing keys (RFC 8301 §3.2): signers MUST use
// at least 1024 bits and SHOULD use at least 2048; verifiers need only
// handle keys up to 4096 bits.
const (
	minRSABits         = 1024
	recommendedRSABits = 2048
	maxVerifiedRSABits = 4096
	maxRSABits         = 8192
)

// Sentinel errors for a signing key that cannot be used; New wraps them in
// a *KeyError, so callers test with errors.Is.
var (
	// ErrKeyFormat: the input is not a PEM private key of a supported type.
	ErrKeyFormat = errors.New("dkim: unusable private key")
	// ErrKeyEncrypted: the PEM block is password-protected.
	ErrKeyEncrypted = errors.New("dkim: encrypted private key")
	// ErrWeakKey: an RSA key under 1024 bits (RFC 8301 §3.2).
	ErrWeakKey = errors.New("dkim: RSA key too short")
)

// KeyError says why a private key was refused. Its text names the PEM
// block type and key size at most, never key bytes, so it is safe to log.
type KeyError struct {
	Reason string // what was wrong and what to do, for a person
	Err    error  // one of ErrKeyFormat, ErrKeyEncrypted, ErrWeakKey
	cause  error  // the parser's error, reachable with errors.As, not printed
}

func (e *KeyError) Error() string { return "dkim key: " + e.Reason }

// Unwrap returns the sentinel and the parser's error, if any.
func (e *KeyError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.cause}
}

func keyErr(sentinel, cause error, format string, args ...any) *KeyError {
	return &KeyError{Reason: fmt.Sprintf(format, args...), Err: sentinel, cause: cause}
}

// parsedKey is a signing key with its DKIM key type ("rsa" or "ed25519",
// the k= tag of RFC 6376 §3.6.1 and RFC 8463 §4.2).
type parsedKey struct {
	signer   crypto.Signer
	algo     string
	bits     int      // RSA modulus size; 256 for Ed25519
	pub      string   // base64 public key data for p= (RFC 6376 §3.6.1)
	warnings []string // usable but not recommended
}

// parseKey reads the first private key of a PEM file: PKCS#1
// "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY" holding RSA or Ed25519. The
// errors it returns never contain key material: parser errors are kept as
// causes but not printed, because a parser may quote the bytes it read.
func parseKey(data []byte) (*parsedKey, error) {
	var types []string
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			types = append(types, block.Type)
			continue
		}
		return parseBlock(block)
	}
	if len(types) > 0 {
		return nil, keyErr(ErrKeyFormat, nil, "no private key in the PEM data (found %s); expected a -----BEGIN PRIVATE KEY----- block, as mailout dkim keygen writes", quoteTypes(types))
	}
	if bytes.Contains(data, []byte("-----BEGIN ")) {
		return nil, keyErr(ErrKeyFormat, nil, "the PEM data is damaged (invalid base64 or no matching -----END line); copy the whole key file again")
	}
	return nil, keyErr(ErrKeyFormat, nil, "no PEM block found; expected a file that starts with -----BEGIN PRIVATE KEY-----, as mailout dkim keygen writes")
}

func quoteTypes(types []string) string {
	q := make([]string, 0, len(types))
	for _, t := range types {
		q = append(q, fmt.Sprintf("%q", printable(t)))
	}
	return strings.Join(q, ", ")
}

// printable keeps a PEM type label readable and short in an error message.
func printable(s string) string {
	const max = 40
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || r == '\ufffd' {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func parseBlock(block *pem.Block) (*parsedKey, error) {
	// PKCS#8 EncryptedPrivateKeyInfo (RFC 5958 §3) or the legacy OpenSSL
	// "Proc-Type: 4,ENCRYPTED" header (RFC 1421 §4.6.1.1).
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] == "4,ENCRYPTED" {
		return nil, keyErr(ErrKeyEncrypted, nil, "the private key is encrypted with a passphrase; write an unencrypted copy readable only by mailout (openssl pkey -in KEY -out KEY.plain && chmod 600 KEY.plain) or generate one with mailout dkim keygen")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, keyErr(ErrKeyFormat, err, "the RSA PRIVATE KEY block is not a valid PKCS#1 RSA key")
		}
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, keyErr(ErrKeyFormat, err, "the PRIVATE KEY block is not a valid PKCS#8 key of a type mailout can use (rsa or ed25519)")
		}
	case "EC PRIVATE KEY":
		return nil, keyErr(ErrKeyFormat, nil, "ECDSA keys cannot sign DKIM (RFC 6376 §3.3, RFC 8463 define rsa and ed25519 only); generate a key with mailout dkim keygen")
	case "OPENSSH PRIVATE KEY":
		return nil, keyErr(ErrKeyFormat, nil, "this is an OpenSSH key, not a PEM DKIM key; generate one with mailout dkim keygen")
	default:
		return nil, keyErr(ErrKeyFormat, nil, "unsupported PEM block %q; expected \"PRIVATE KEY\" (PKCS#8) or \"RSA PRIVATE KEY\" (PKCS#1)", printable(block.Type))
	}
	return checkKey(key)
}

func checkKey(key any) (*parsedKey, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		bits := k.N.BitLen()
		// p= holds the DER SubjectPublicKeyInfo, as opendkim-genkey and
		// RFC 6376 Appendix C publish it.
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			return nil, keyErr(ErrKeyFormat, err, "the RSA public key cannot be encoded")
		}
		p := &parsedKey{signer: k, algo: "rsa", bits: bits, pub: base64.StdEncoding.EncodeToString(der)}
		switch {
		case bits < minRSABits:
			// RFC 8301 §3.2: signers MUST use RSA keys of at least 1024
			// bits; verifiers MUST NOT accept shorter ones.
			return nil, keyErr(ErrWeakKey, nil, "the RSA key has %d bits; receivers reject keys under %d bits (RFC 8301 §3.2): generate a 2048-bit key with mailout dkim keygen", bits, minRSABits)
		case bits > maxRSABits:
			return nil, keyErr(ErrKeyFormat, nil, "the RSA key has %d bits, more than mailout accepts (%d); receivers need only verify up to %d bits (RFC 8301 §3.2)", bits, maxRSABits, maxVerifiedRSABits)
		case bits < recommendedRSABits:
			p.warnings = append(p.warnings, fmt.Sprintf("the RSA key has %d bits; RFC 8301 §3.2 recommends at least %d, and some receivers treat shorter keys as weak: generate a new key with mailout dkim keygen", bits, recommendedRSABits))
		case bits > maxVerifiedRSABits:
			p.warnings = append(p.warnings, fmt.Sprintf("the RSA key has %d bits; receivers need only verify keys up to %d bits (RFC 8301 §3.2), so some may fail the signature", bits, maxVerifiedRSABits))
		}
		return p, nil
	case ed25519.PrivateKey:
		// RFC 8463 §4.2: p= is the raw 32-byte public key.
		pub := k.Public().(ed25519.PublicKey)
		return &parsedKey{signer: k, algo: "ed25519", bits: 256, pub: base64.StdEncoding.EncodeToString(pub), warnings: []string{
			// RFC 8463 §1: many receivers still verify only rsa-sha256.
			"Ed25519 signatures are not verified by every receiver yet (RFC 8463); many senders add an RSA signature too",
		}}, nil
	case *ecdsa.PrivateKey, *ecdh.PrivateKey:
		return nil, keyErr(ErrKeyFormat, nil, "ECDSA and ECDH keys cannot sign DKIM (RFC 6376 §3.3, RFC 8463 define rsa and ed25519 only); generate a key with mailout dkim keygen")
	default:
		return nil, keyErr(ErrKeyFormat, nil, "the key is of type %T; DKIM signs with rsa or ed25519 only (RFC 6376 §3.3, RFC 8463)", key)
	}
}

// GenerateKey makes a new signing key and returns it as a PKCS#8
// "PRIVATE KEY" PEM block. algo is "rsa" (bits 0 means 2048, the size
// RFC 8301 §3.2 recommends; 2048 to 4096 accepted) or "ed25519" (bits must
// be 0 or 256).
func GenerateKey(algo string, bits int) ([]byte, error) {
	var key any
	switch strings.ToLower(algo) {
	case "rsa", "":
		if bits == 0 {
			bits = recommendedRSABits
		}
		if bits < recommendedRSABits || bits > maxVerifiedRSABits {
			return nil, fmt.Errorf("dkim: RSA key size %d: choose 2048 to 4096 bits (RFC 8301 §3.2)", bits)
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, fmt.Errorf("dkim: generate RSA key: %w", err)
		}
		key = k
	case "ed25519":
		if bits != 0 && bits != 256 {
			return nil, fmt.Errorf("dkim: Ed25519 keys have a fixed size; leave the size unset (got %d bits)", bits)
		}
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("dkim: generate Ed25519 key: %w", err)
		}
		key = k
	default:
		return nil, fmt.Errorf("dkim: unknown key algorithm %q: use rsa or ed25519", printable(algo))
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("dkim: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
