// Package tlsconf builds the TLS client settings mailout uses wherever it
// authenticates an SMTP server: the relay route (transport) and the
// doctor's checks of the relay and of the MX hosts. One function makes
// them, so a diagnosis judges a server by the very rules a campaign will
// send with.
//
// Place in the flow: a relay account or an MX host name, with the roots
// the user gave -> Client -> the *tls.Config smtpclient dials with.
// Opportunistic TLS on the direct route authenticates nothing (RFC 7435
// §1.3) and does not use this package.
package tlsconf

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// MinVersion is the oldest TLS version accepted from a server that is
// authenticated: TLS 1.0 and 1.1 are deprecated (RFC 8996 §2, §3), and
// every submission service speaks 1.2.
const MinVersion = tls.VersionTLS12

// Settings say which server certificate is accepted.
type Settings struct {
	// ServerName is the name the certificate must be valid for, and the
	// SNI sent: the relay's host name (or IP address) or the MX host.
	ServerName string
	// Roots verify the certificate chain; nil means the system roots
	// (SSL_CERT_FILE is honoured).
	Roots *x509.CertPool
	// CAFile, when set, replaces Roots with the system roots plus the PEM
	// certificates of the file (see LoadCAFile).
	CAFile string
	// Fingerprint, when set, is the SHA-256 of the DER bytes of the one
	// leaf certificate accepted: the chain, the name and the dates are not
	// checked, which suits a relay with a self-signed certificate.
	Fingerprint []byte
}

// Verified returns the settings that verify the server's certificate
// chain against roots (nil: the system roots) and its name against
// serverName: Client without a CA file or a pin.
func Verified(serverName string, roots *x509.CertPool) *tls.Config {
	return &tls.Config{ServerName: serverName, MinVersion: MinVersion, RootCAs: roots}
}

// Client returns the TLS client settings for s. The error is LoadCAFile's.
func Client(s Settings) (*tls.Config, error) {
	tc := Verified(s.ServerName, s.Roots)
	if s.CAFile != "" {
		pool, err := LoadCAFile(s.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if len(s.Fingerprint) > 0 {
		want := bytes.Clone(s.Fingerprint)
		// The chain is not checked against any root: the user pinned this
		// very certificate, which is stronger for a self-signed relay.
		tc.InsecureSkipVerify = true //nolint:gosec // the pinned certificate is checked below
		tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return &PinMismatchError{}
			}
			got := sha256.Sum256(raw[0])
			if !bytes.Equal(got[:], want) {
				return &PinMismatchError{Got: got[:]}
			}
			return nil
		}
	}
	return tc, nil
}

// PinMismatchError is the handshake error when the server's certificate is
// not the pinned one: the server changed its certificate, or something in
// the middle (an antivirus scanning outgoing mail) answers with its own.
type PinMismatchError struct {
	// Got is the SHA-256 fingerprint of the certificate the server sent;
	// nil when it sent none.
	Got []byte
}

func (e *PinMismatchError) Error() string {
	if e.Got == nil {
		return "the server sent no certificate to compare with the pinned fingerprint"
	}
	return fmt.Sprintf("certificate fingerprint sha256:%x does not match the pinned one", e.Got)
}

// ErrNoCertificate is wrapped by LoadCAFile when the file holds no PEM
// certificate.
var ErrNoCertificate = errors.New("no PEM certificate in it")

// LoadCAFile reads a PEM bundle into a pool that extends the system roots.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("relay CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("relay CA file %s: %w", path, ErrNoCertificate)
	}
	return pool, nil
}
