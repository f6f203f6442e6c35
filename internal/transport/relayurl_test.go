package transport

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/smtpclient"
	"mailout/internal/smtptest"
)

// A host:port that is not a host and a port from 1 to 65535 is refused
// with an error that names the URL without its password.
func TestRelayURLBadHostOrPort(t *testing.T) {
	for _, raw := range []string{
		"smtp://127.0.0.1:587:25",
		"smtp://user:" + testPass + "@smtp.example.com:587:25",
		"smtp://user:" + testPass + "@::1:25",
		"smtp://smtp.example.com:0",
		"smtp://smtp.example.com:65536",
		"smtp://user:" + testPass + "@bad_host!.example.com:587",
		"smtp://user:" + testPass + "@smtp..example.com:587",
	} {
		a, _, err := ParseRelayURL(raw, nil, nil)
		if err == nil {
			t.Errorf("%s accepted as host %q port %d", raw, a.Host, a.Port)
			continue
		}
		var ue *RelayURLError
		if !errors.As(err, &ue) {
			t.Errorf("%s: %v is not a *RelayURLError", raw, err)
			continue
		}
		if strings.Contains(err.Error(), testPass) {
			t.Errorf("%s: the error shows the password: %v", raw, err)
		}
		host := strings.TrimPrefix(raw[strings.LastIndex(raw, "@")+1:], "smtp://")
		if !strings.Contains(err.Error(), host) {
			t.Errorf("%s: the error %q does not name the URL", raw, err)
		}
	}
}

func TestRelayURLHostForms(t *testing.T) {
	tests := []struct{ raw, host, addr string }{
		{"smtp://SMTP.Example.COM:587", "smtp.example.com", "smtp.example.com:587"},
		{"smtp://u:p@smtp.bücher.example", "smtp.xn--bcher-kva.example", "smtp.xn--bcher-kva.example:587"},
		{"smtps://[::1]:2465", "::1", "[::1]:2465"},
		{"smtp+insecure://127.0.0.1:2525", "127.0.0.1", "127.0.0.1:2525"},
		{"smtp+insecure://mailhub", "mailhub", "mailhub:25"},
	}
	for _, tt := range tests {
		a, _, err := ParseRelayURL(tt.raw, nil, nil)
		if err != nil || a.Host != tt.host || a.Addr() != tt.addr {
			t.Errorf("%s: host %q addr %q (%v), want %q %q", tt.raw, a.Host, a.Addr(), err, tt.host, tt.addr)
		}
	}
}

// A relay host with a Unicode name is dialled, and its certificate
// checked, under its A-label name.
func TestRelayIDNHostUsesALabel(t *testing.T) {
	const aLabel = "smtp.xn--bcher-kva.example"
	tc, pool, _ := smtptest.NewTestCert(t, aLabel)
	srv := smtptest.Start(t, smtptest.Options{TLS: tc, Auth: map[string]string{"user": testPass}, RequireAuth: true})
	var mu sync.Mutex
	var dialled []string
	r, err := NewRelay(RelayConfig{
		Accounts: []*RelayAccount{account(t, "smtp://user:"+testPass+"@smtp.bücher.example:587")},
		MaxConns: 1, RootCAs: pool, LocalName: "sender.example.com",
		Timeouts: smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dialled = append(dialled, addr)
			mu.Unlock()
			return (&net.Dialer{}).DialContext(ctx, network, srv.Addr)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	res := r.Deliver(t.Context(), msg("x@example.org"))
	if res.Class != outcome.Delivered {
		t.Fatalf("%+v, want delivered over TLS verified for %s", res.Result, aLabel)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialled) != 1 || dialled[0] != aLabel+":587" {
		t.Errorf("dialled %v, want [%s:587]", dialled, aLabel)
	}
	if res.Via != "relay:"+aLabel {
		t.Errorf("Via = %q", res.Via)
	}
}
