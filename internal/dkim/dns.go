package dkim

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
)

// DNSRecord returns the name and value of the TXT record that publishes the
// public key (RFC 6376 §3.6.1, §3.6.2.1): name is
// selector._domainkey.domain, value is "v=DKIM1; k=rsa; p=…" (p= the
// base64 DER SubjectPublicKeyInfo, as opendkim-genkey writes it) or
// "v=DKIM1; k=ed25519; p=…" (p= the 32-byte raw key, RFC 8463 §4.2).
func (s *Signer) DNSRecord() (name, value string) {
	return s.selector + "._domainkey." + s.domain, "v=DKIM1; k=" + s.key.algo + "; p=" + s.key.pub
}

// ZoneRecord returns the record as one line for a BIND-style zone file,
// the value split into character-strings of at most 255 octets.
func (s *Signer) ZoneRecord() string {
	name, value := s.DNSRecord()
	parts := SplitTXT(value)
	for i, p := range parts {
		parts[i] = `"` + p + `"`
	}
	return name + ". IN TXT ( " + strings.Join(parts, " ") + " )"
}

// SplitTXT splits a TXT value into character-strings of at most 255
// octets (RFC 1035 §3.3.14); receivers join them without a separator
// (RFC 6376 §3.6.2.2). A DKIM value contains no quote or backslash.
func SplitTXT(value string) []string {
	var out []string
	for len(value) > 255 {
		out = append(out, value[:255])
		value = value[255:]
	}
	return append(out, value)
}

// Sentinels for CheckPublished; the returned *PublishError wraps one.
var (
	ErrNotPublished    = errors.New("dkim: no key record published")
	ErrLookup          = errors.New("dkim: key record lookup failed")
	ErrRecordSyntax    = errors.New("dkim: key record is malformed")
	ErrKeyRevoked      = errors.New("dkim: key record is revoked")
	ErrKeyType         = errors.New("dkim: key record has another key type")
	ErrKeyMismatch     = errors.New("dkim: published key does not match the private key")
	ErrTestingMode     = errors.New("dkim: key record is in testing mode")
	ErrMultipleRecords = errors.New("dkim: several TXT records at the key name")
)

// PublishError is a problem with the published key record. Its message
// says what is wrong and ends with the exact record to publish. Warning is
// true for a record that works but should be changed (t=y testing mode).
type PublishError struct {
	Name, Want string // the record to publish: name and TXT value
	Problem    string // what is wrong, for a person
	Warning    bool
	Err        error // one of the sentinels above
	cause      error // the resolver's error, for ErrLookup
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("dkim: %s: %s. Publish this TXT record: %s  TXT  %q", e.Name, e.Problem, e.Name, e.Want)
}

// Unwrap returns the sentinel and, for a lookup failure, the resolver's error.
func (e *PublishError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.cause}
}

// IsWarning reports whether err from CheckPublished is only a warning.
func IsWarning(err error) bool {
	var pe *PublishError
	return errors.As(err, &pe) && pe.Warning
}

// CheckPublished looks up the key record of s with lookupTXT (one string
// per TXT record, character-strings joined, as net.Resolver.LookupTXT
// returns) and checks it would verify s's signatures as a receiver does
// (RFC 6376 §3.6.1, §6.1.2). It returns nil, or a *PublishError whose
// Warning field separates advice (t=y) from a record that fails.
func CheckPublished(ctx context.Context, s *Signer, lookupTXT func(ctx context.Context, name string) ([]string, error)) error {
	name, want := s.DNSRecord()
	fail := func(sentinel error, format string, args ...any) *PublishError {
		return &PublishError{Name: name, Want: want, Problem: fmt.Sprintf(format, args...), Err: sentinel}
	}
	txts, err := lookupTXT(ctx, name)
	if err != nil {
		var pe *PublishError
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			pe = fail(ErrNotPublished, "no TXT record exists at this name, so receivers cannot verify the signature")
		} else {
			pe = fail(ErrLookup, "the DNS lookup failed (%v), so the record could not be checked; if it is not published yet", err)
		}
		pe.cause = err
		return pe
	}
	switch len(txts) {
	case 0:
		return fail(ErrNotPublished, "no TXT record exists at this name, so receivers cannot verify the signature")
	case 1:
	default:
		// Even a non-DKIM record here (an SPF record at a wildcard, say)
		// counts: RFC 6376 §3.6.2.2 leaves several records undefined.
		return fail(ErrMultipleRecords, "%d TXT records exist at this name; receivers may pick any or fail (RFC 6376 §3.6.2.2): keep exactly one", len(txts))
	}
	rec, err := parseKeyRecord(txts[0])
	if err != nil {
		return fail(ErrRecordSyntax, "the record %q is not a valid DKIM key record (%v)", printable(txts[0]), err)
	}
	if v, ok := rec["v"]; ok && v != "DKIM1" {
		return fail(ErrRecordSyntax, "the record has v=%s; it must be v=DKIM1 (RFC 6376 §3.6.1)", printable(v))
	}
	p, ok := rec["p"]
	if !ok {
		return fail(ErrRecordSyntax, "the record has no p= tag with the public key (RFC 6376 §3.6.1)")
	}
	if p == "" {
		return fail(ErrKeyRevoked, "the record has an empty p=, which revokes the key (RFC 6376 §3.6.1): receivers fail every signature made with it")
	}
	k := rec["k"]
	if k == "" {
		k = "rsa" // RFC 6376 §3.6.1 default
	}
	if !strings.EqualFold(k, s.key.algo) {
		return fail(ErrKeyType, "the record says k=%s but the private key is %s", printable(k), s.key.algo)
	}
	if h, ok := rec["h"]; ok && !hasTag(h, "sha256") {
		return fail(ErrRecordSyntax, "the record has h=%s, which excludes sha256, the only hash mailout signs with (RFC 8301 §3.1)", printable(h))
	}
	if sv, ok := rec["s"]; ok && !hasTag(sv, "email") && !hasTag(sv, "*") {
		return fail(ErrRecordSyntax, "the record has s=%s, which excludes email (RFC 6376 §3.6.1)", printable(sv))
	}
	der, err := base64.StdEncoding.DecodeString(stripFWS(p))
	if err != nil {
		return fail(ErrRecordSyntax, "p= is not valid base64")
	}
	if !s.samePublicKey(der) {
		return fail(ErrKeyMismatch, "the published public key belongs to another private key, so every signature fails; publish the key of the private key mailout uses")
	}
	if hasTag(rec["t"], "y") {
		pe := fail(ErrTestingMode, "the record has t=y (testing): receivers may treat signatures as unsigned (RFC 6376 §3.6.1); remove t=y once signatures verify")
		pe.Warning = true
		return pe
	}
	return nil
}

// samePublicKey compares published key data with s's public key. RSA data
// may be a SubjectPublicKeyInfo or a bare PKCS#1 RSAPublicKey (RFC 6376
// §3.6.1 and erratum 3017 disagree; receivers accept both).
func (s *Signer) samePublicKey(der []byte) bool {
	switch pub := s.key.signer.Public().(type) {
	case ed25519.PublicKey:
		return bytes.Equal(der, pub)
	case *rsa.PublicKey:
		var got *rsa.PublicKey
		if k, err := x509.ParsePKIXPublicKey(der); err == nil {
			got, _ = k.(*rsa.PublicKey)
		} else if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
			got = k
		}
		return got != nil && got.Equal(pub)
	}
	return false
}

// parseKeyRecord parses a key record's tag-list (RFC 6376 §3.2): tags
// separated by ";", "tag=value" with optional whitespace; a duplicate tag
// is an error.
func parseKeyRecord(s string) (map[string]string, error) {
	tags := make(map[string]string)
	for _, spec := range strings.Split(s, ";") {
		if strings.TrimSpace(spec) == "" {
			continue // a trailing ";" is allowed
		}
		k, v, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, errors.New("a tag without =")
		}
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, errors.New("an empty tag name")
		}
		if _, dup := tags[k]; dup {
			return nil, fmt.Errorf("tag %s appears twice", printable(k))
		}
		tags[k] = strings.TrimSpace(v)
	}
	return tags, nil
}

// hasTag reports whether the colon-separated list contains want.
func hasTag(list, want string) bool {
	for _, t := range strings.Split(list, ":") {
		if strings.EqualFold(strings.TrimSpace(t), want) {
			return true
		}
	}
	return false
}

// stripFWS removes the whitespace RFC 6376 §3.6.1 allows inside p=.
func stripFWS(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}
