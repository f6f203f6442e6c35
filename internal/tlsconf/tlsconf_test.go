package tlsconf

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"mailout/internal/smtptest"
)

// handshake runs a TLS handshake on loopback between a server with
// serverTLS and a client with tc, and returns the client's error.
func handshake(t *testing.T, serverTLS, tc *tls.Config) error {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		_ = c.(*tls.Conn).Handshake()
		c.Close()
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), tc)
	if err == nil {
		c.Close()
	}
	<-done
	return err
}

func TestClient(t *testing.T) {
	server, pool, _ := smtptest.NewTestCert(t, "127.0.0.1")
	der := server.Certificates[0].Certificate[0]
	sum := sha256.Sum256(der)
	old := server.Clone()
	old.MaxVersion = tls.VersionTLS11
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("settings", func(t *testing.T) {
		tc, err := Client(Settings{ServerName: "smtp.example.com", Roots: pool})
		if err != nil {
			t.Fatal(err)
		}
		if tc.ServerName != "smtp.example.com" || tc.MinVersion != tls.VersionTLS12 || !tc.RootCAs.Equal(pool) || tc.InsecureSkipVerify {
			t.Errorf("config: name %q, min version %x, roots given %v, skip verify %v",
				tc.ServerName, tc.MinVersion, tc.RootCAs.Equal(pool), tc.InsecureSkipVerify)
		}
	})
	for _, tc := range []struct {
		name   string
		server *tls.Config
		s      Settings
		ok     bool
	}{
		{"trusted", server, Settings{ServerName: "127.0.0.1", Roots: pool}, true},
		{"untrusted", server, Settings{ServerName: "127.0.0.1", Roots: x509.NewCertPool()}, false},
		{"another name", server, Settings{ServerName: "smtp.example.com", Roots: pool}, false},
		{"CA file", server, Settings{ServerName: "127.0.0.1", Roots: x509.NewCertPool(), CAFile: caFile}, true},
		{"pinned", server, Settings{ServerName: "another.name.test", Roots: x509.NewCertPool(), Fingerprint: sum[:]}, true},
		{"TLS 1.1", old, Settings{ServerName: "127.0.0.1", Roots: pool}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Client(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if err := handshake(t, tc.server, c); (err == nil) != tc.ok {
				t.Errorf("handshake error %v, want success %v", err, tc.ok)
			}
		})
	}
	t.Run("pinned to another certificate", func(t *testing.T) {
		c, err := Client(Settings{ServerName: "127.0.0.1", Roots: pool, Fingerprint: bytes.Repeat([]byte{0xab}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		err = handshake(t, server, c)
		var pm *PinMismatchError
		if !errors.As(err, &pm) || !bytes.Equal(pm.Got, sum[:]) {
			t.Fatalf("handshake error %v, want a *PinMismatchError with the server's fingerprint", err)
		}
	})
	t.Run("CA file without a certificate", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty.pem")
		if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Client(Settings{ServerName: "127.0.0.1", CAFile: empty}); !errors.Is(err, ErrNoCertificate) {
			t.Fatalf("error %v, want ErrNoCertificate", err)
		}
	})
}
