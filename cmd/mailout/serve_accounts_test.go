package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/secret"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// serveProc is a running mailout serve.
type serveProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
}

func startServe(t *testing.T, db string, env ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--db", db)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Wait()
		t.Fatalf("no address printed: %v; stderr: %s", err, p.stderr.String())
	}
	p.url = strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(line, "mailout serve: ")), "/")
	return p
}

// stop ends serve with SIGTERM and returns what it wrote on stderr.
func (p *serveProc) stop(t *testing.T) string {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v; stderr: %s", err, p.stderr.String())
	}
	return p.stderr.String()
}

// serve keeps its users in the database, so that the administrator made
// by mailout admin create signs in; it creates the secret key file beside
// the database and says so; a relay account saved on the settings page
// sends a campaign with its sealed password; an API token made on the
// settings page opens the JSON API and /metrics.
func TestServeUsesStoredAccountsSettingsAndKey(t *testing.T) {
	const adminPW, relayPW = "a-good-long-passphrase", "relay-secret-0xBEEF"
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"relayuser": relayPW}, RequireAuth: true})
	db := filepath.Join(t.TempDir(), "mailout.db")
	if r := mailout(t, map[string]string{"ADMIN_PW": adminPW}, "admin", "create", "--db", db, "--email", "root@example.org", "--password-env", "ADMIN_PW"); r.code != exitOK {
		t.Fatalf("admin create: %d %s", r.code, r.stderr)
	}
	p := startServe(t, db)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		res, err := client.PostForm(p.url+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	if res, _ := post("/login", url.Values{"email": {"root@example.org"}, "password": {adminPW}}); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/campaigns" {
		t.Fatalf("sign-in with the administrator of admin create: %s", res.Status)
	}
	host, port, _ := strings.Cut(srv.Addr, ":")
	res, _ := post("/settings/relays", url.Values{"index": {"-1"}, "name": {"main"}, "host": {host}, "port": {port},
		"tls": {"none"}, "user": {"relayuser"}, "password": {relayPW}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save the relay account: %s", res.Status)
	}

	// A campaign on the stored account, made by another process (as the
	// compose page will), started from the web: serve finds the password.
	ctx := context.Background()
	svc, err := campaign.Open(ctx, db, false, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkEnv := campaign.Env{Secret: func(string) (string, error) { return relayPW, nil }}
	rt, err := campaign.RouteConfig{Relays: []string{"smtp+insecure://relayuser@" + srv.Addr}, RelayPasswordSettings: []string{"main"},
		HELO: "sender.mailout.test"}.Check(route.Sandbox, checkEnv)
	if err != nil {
		t.Fatal(err)
	}
	draft, err := campaign.NewCampaign{Name: "stored-account", Routing: rt, MaxAge: time.Hour, RetryMin: time.Minute,
		Message: &store.Message{Template: []byte("From: a@example.com\nSubject: Hi\n\nHello\n")},
		Profile: throttle.Profile{Name: "test", Connections: 1, Rate: 1000}}.Check(checkEnv)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader("email\na@example.org\nb@example.org\n"), recipient.Options{}, nil), nil)
	svc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := post("/campaigns/"+strconv.FormatInt(c.ID, 10)+"/start", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %s", res.Status)
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.WaitMessages(wait, 2); err != nil {
		t.Fatalf("the campaign on the stored relay account did not send: %v; stderr: %s", err, p.stderr.String())
	}
	if m := srv.Messages(); m[0].AuthUser != "relayuser" {
		t.Errorf("sent as %q, want relayuser", m[0].AuthUser)
	}

	// An API token made on the settings page opens the API and /metrics.
	_, body := post("/settings/tokens", url.Values{"token_name": {"ci"}})
	i := strings.Index(body, `value="mo_`)
	if i < 0 {
		t.Fatalf("no token shown:\n%s", body)
	}
	token := body[i+len(`value="`):]
	token = token[:strings.IndexByte(token, '"')]
	for _, path := range []string{"/api/v1/campaigns", "/metrics"} {
		req, _ := http.NewRequest(http.MethodGet, p.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), map[string]string{"/api/v1/campaigns": "stored-account", "/metrics": "mailout_messages_total"}[path]) {
			t.Errorf("GET %s with the token: %s %.200s", path, res.Status, b)
		}
		if res, err := http.Get(p.url + path); err != nil || res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %v %v, want 401", path, res.Status, err)
		}
	}

	stderr := p.stop(t)
	keyFile := db + ".secret.key"
	if !strings.Contains(stderr, "created the secret key file "+keyFile) || !strings.Contains(stderr, "back it up with the database") {
		t.Errorf("serve did not say where the new key is and that it needs a backup:\n%s", stderr)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	names, _ := filepath.Glob(db + "*")
	for _, n := range names {
		if b, _ := os.ReadFile(n); bytes.Contains(b, []byte(relayPW)) || bytes.Contains(b, []byte(adminPW)) {
			t.Errorf("%s holds a password in clear", filepath.Base(n))
		}
	}

	// With another key the stored passwords cannot be read: serve says so
	// and does not start.
	other := secret.Encode(secret.Generate())
	r := mailout(t, map[string]string{secret.EnvVar: other}, "serve", "--db", db, "--listen", "127.0.0.1:0")
	if r.code == exitOK || !strings.Contains(r.stderr, "does not match") {
		t.Errorf("serve with another key: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := mailout(t, nil, "serve", "--db", db, "--listen", "127.0.0.1:0", "--secret-key-file", filepath.Join(t.TempDir(), "none")); r.code != exitUsage || !strings.Contains(r.stderr, "--secret-key-file") {
		t.Errorf("serve with a missing key file: exit %d, stderr %q", r.code, r.stderr)
	}
}
