package doctor

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailout/internal/mx/mxtest"
	"mailout/internal/peertest"
	"mailout/internal/transport"
)

const autoconfigXML = `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="lab.test">
    <domain>lab.test</domain>
    <incomingServer type="imap"><hostname>imap.lab.test</hostname><port>993</port><socketType>SSL</socketType></incomingServer>
    <outgoingServer type="smtp">
      <hostname>mail.lab.test</hostname>
      <port>PORT</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>`

// autoconfigServer serves the document for Host autoconfig.lab.test only
// and records the hosts asked.
type autoconfigSite struct {
	mu    sync.Mutex
	hosts []string
	srv   *httptest.Server
}

func newAutoconfigSite(t *testing.T, doc string) *autoconfigSite {
	t.Helper()
	s := &autoconfigSite{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hosts = append(s.hosts, r.Host+r.URL.Path)
		s.mu.Unlock()
		if doc == "" || r.Host != "autoconfig.lab.test" || r.URL.Path != "/mail/config-v1.1.xml" ||
			r.URL.Query().Get("emailaddress") != "alice@lab.test" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte(doc))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// TestDiscover finds the relay of alice@lab.test three ways against the
// real Postfix: an autoconfig document on a local HTTP server, SRV records
// on a test DNS server, and probing alone when neither exists.
func TestDiscover(t *testing.T) {
	p := peertest.Postfix(t)
	_, subPort, _ := net.SplitHostPort(p.Submission)
	_, smtpsPort, _ := net.SplitHostPort(p.SMTPS)
	_, plainPort, _ := net.SplitHostPort(p.Plain)
	port := func(s string) int { n, _ := strconv.Atoi(s); return n }
	to := Timeouts{DNS: time.Second, Connect: time.Second, Greeting: 1500 * time.Millisecond, SMTP: 10 * time.Second}

	tests := []struct {
		name   string
		zone   func(z *mxtest.Zone)
		doc    string
		ports  []int
		source string
		url    string
	}{
		{"autoconfig", func(z *mxtest.Zone) { z.A("mail.lab.test", "127.0.0.1") },
			strings.Replace(autoconfigXML, "PORT", smtpsPort, 1), []int{closedPort(t)},
			"autoconfig", "smtps://alice%40lab.test@mail.lab.test:" + smtpsPort + "?password-env=MAILOUT_RELAY_PASSWORD"},
		{"SRV records", func(z *mxtest.Zone) {
			z.RR("_submission._tcp.lab.test. 60 IN SRV 0 1 "+subPort+" submit.lab.test.").
				RR("_submission._tcp.lab.test. 60 IN SRV 10 1 "+plainPort+" backup.lab.test.").
				A("submit.lab.test", "127.0.0.1").A("backup.lab.test", "127.0.0.1")
			z.RR("_submissions._tcp.lab.test. 60 IN SRV 0 0 0 .") // RFC 6186 §3.4: not provided
		}, "", []int{closedPort(t)},
			"srv", "smtp://alice%40lab.test@submit.lab.test:" + subPort + "?password-env=MAILOUT_RELAY_PASSWORD"},
		{"probing alone", func(z *mxtest.Zone) { z.A("smtp.lab.test", "127.0.0.1") },
			"", []int{closedPort(t), port(plainPort), port(subPort)},
			"probe", "smtp://alice%40lab.test@smtp.lab.test:" + subPort + "?password-env=MAILOUT_RELAY_PASSWORD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := mxtest.NewZone()
			tt.zone(z)
			dnsSrv := mxtest.Start(t, z)
			site := newAutoconfigSite(t, tt.doc)
			d, err := Discover(context.Background(), DiscoverConfig{Address: "alice@lab.test", DNS: []string{dnsSrv.Addr()},
				HTTPGet: HTTPGetVia(site.srv.Listener.Addr().String(), time.Second), Ports: tt.ports, Timeouts: to})
			if err != nil {
				t.Fatalf("Discover: %v\n%s", err, strings.Join(d.Tried, "\n"))
			}
			if d.Source != tt.source || d.URL != tt.url {
				t.Errorf("found %s %s, want %s %s\n%s", d.Source, d.URL, tt.source, tt.url, strings.Join(d.Tried, "\n"))
			}
			if !contains(d.AuthMechanisms, "PLAIN") {
				t.Errorf("AUTH mechanisms %v lack PLAIN", d.AuthMechanisms)
			}
			// The URL is one `mailout send --relay` accepts.
			acc, _, err := transport.ParseRelayURL(d.URL, func(k string) string { return map[string]string{PasswordEnv: "pw"}[k] }, nil)
			if err != nil || acc.Username != "alice@lab.test" || acc.Password != "pw" {
				t.Errorf("ParseRelayURL(%q): %v, %+v", d.URL, err, acc)
			}
			for _, lang := range []string{"en", "es"} {
				var b bytes.Buffer
				d.WriteText(&b, lang)
				if !strings.Contains(b.String(), "--relay '"+d.URL+"'") {
					t.Errorf("text (%s) lacks the URL:\n%s", lang, b.String())
				}
			}
			site.mu.Lock()
			asked := strings.Join(site.hosts, " ")
			site.mu.Unlock()
			if !strings.Contains(asked, "autoconfig.lab.test/mail/config-v1.1.xml") {
				t.Errorf("autoconfig not asked: %q", asked)
			}
		})
	}

	t.Run("nothing found", func(t *testing.T) {
		dnsSrv := mxtest.Start(t, mxtest.NewZone())
		site := newAutoconfigSite(t, "")
		d, err := Discover(context.Background(), DiscoverConfig{Address: "bob@nowhere.test", DNS: []string{dnsSrv.Addr()},
			HTTPGet: HTTPGetVia(site.srv.Listener.Addr().String(), time.Second), Ports: []int{closedPort(t)}, Timeouts: to})
		if !errors.Is(err, ErrNotFound) || d.URL != "" || len(d.Tried) < 6 {
			t.Errorf("err %v, %+v", err, d)
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestParseAutoconfig(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []autoconfigServer
		err       bool
	}{
		{"smtp server", strings.Replace(autoconfigXML, "PORT", "465", 1),
			[]autoconfigServer{{Hostname: "mail.lab.test", Port: 465, SocketType: "SSL", Username: "%EMAILADDRESS%"}}, false},
		{"no outgoing server", `<clientConfig><emailProvider><incomingServer type="imap"/></emailProvider></clientConfig>`, nil, false},
		{"port out of range", `<clientConfig><emailProvider><outgoingServer type="smtp"><hostname>h</hostname><port>70000</port></outgoingServer></emailProvider></clientConfig>`, nil, false},
		{"not XML", `{"json": true}`, nil, true},
		{"other root", `<html></html>`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAutoconfig([]byte(tt.doc))
			if (err != nil) != tt.err {
				t.Fatalf("err %v", err)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if u := expandUser("%EMAILLOCALPART%", "alice@lab.test"); u != "alice" {
		t.Errorf("expandUser = %q", u)
	}
}

func FuzzParseAutoconfig(f *testing.F) {
	f.Add([]byte(strings.Replace(autoconfigXML, "PORT", "587", 1)))
	f.Add([]byte(`<clientConfig><emailProvider><outgoingServer type="smtp"><hostname> h </hostname><port>-1</port></outgoingServer></emailProvider></clientConfig>`))
	f.Add([]byte("<"))
	f.Fuzz(func(t *testing.T, b []byte) {
		servers, err := parseAutoconfig(b)
		if err != nil && servers != nil {
			t.Fatal("servers with an error")
		}
		for _, s := range servers {
			if s.Hostname == "" || s.Port <= 0 || s.Port > 65535 {
				t.Fatalf("unusable server %+v", s)
			}
		}
	})
}
