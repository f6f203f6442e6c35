package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)


// keptMessage exports campaign name's messages and returns the one to rcpt.
func keptMessage(t *testing.T, db, name, rcpt string) []byte {
	t.Helper()
	dir := t.TempDir()
	if r := mailout(t, nil, "export", name, dir, "--db", db); r.code != exitOK {
		t.Fatalf("export: %d %s", r.code, r.stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"+rcpt+".eml"))
	if len(files) != 1 {
		t.Fatalf("export of %s: %v, want one file for %s", name, files, rcpt)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// providerPost POSTs the one-click body as a mailbox provider's server
// does (RFC 8058 §3.2), from another site.
func providerPost(t *testing.T, link string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, link, strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://mail.provider.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func suppressionCSV(t *testing.T, db string) string {
	t.Helper()
	r := mailout(t, nil, "suppression", "list", "--db", db, "--format", "csv")
	if r.code != exitOK {
		t.Fatalf("suppression list: %d %s", r.code, r.stderr)
	}
	return r.stdout
}

// One-click unsubscribe end to end, as a mailbox provider does it: a
// signed campaign sent with --public-url carries List-Unsubscribe and
// List-Unsubscribe-Post under DKIM; the link in the header and in the
// body is the same; a GET changes nothing; an altered token is refused;
// the provider's POST puts the address on the suppression list (twice is
// fine), the report counts it, and the next campaign to the same
// recipients stores it as suppressed.
func TestOneClickUnsubscribeAsAMailboxProvider(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	base := startServe(t, db).url
	key, record := keygen(t, "rsa")
	list := writeList(t, "ann@example.org", "bob@example.org", "cid@example.org")
	msg := writeMessage(t, testMessage+"Leave the list: {{unsubscribe_url}}\n")
	msgOwnHeader := writeMessage(t, strings.Replace(testMessage+"Leave: {{unsubscribe_url}}\n", "\n\n",
		"\nList-Unsubscribe: <mailto:old@example.com>\n\n", 1))
	r := mailout(t, nil, "send", "--db", db, "--recipients", list, "--message", msgOwnHeader, "--campaign", "first",
		"--public-url", base+"/", "--unsubscribe-mailto", "leave@example.com", "--dkim-key", key, "--dkim-selector", "s1")
	if r.code != exitOK {
		t.Fatalf("send: %d %s", r.code, r.stderr)
	}

	data := keptMessage(t, db, "first", "bob@example.org")
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	lu := m.Header["List-Unsubscribe"]
	if len(lu) != 1 {
		t.Fatalf("List-Unsubscribe = %q, want one (the template's own replaced)", lu)
	}
	links := regexp.MustCompile(`<([^>]+)>`).FindAllStringSubmatch(lu[0], -1)
	if len(links) != 2 || !strings.HasPrefix(links[0][1], base+"/u/") ||
		links[1][1] != "mailto:leave@example.com?subject=unsubscribe" {
		t.Fatalf("List-Unsubscribe = %q, want <%s/u/TOKEN>, <mailto:leave@example.com?subject=unsubscribe>", lu[0], base)
	}
	link := links[0][1]
	if got := m.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", got)
	}
	if strings.Contains(link, "bob") || strings.Contains(link, "example.org") {
		t.Errorf("the link %q shows the address", link)
	}
	if !bytes.Contains(data, []byte("Leave: "+link+"\r\n")) {
		t.Errorf("the body does not hold the header's link %s:\n%s", link, data)
	}
	other := keptMessage(t, db, "first", "ann@example.org")
	if bytes.Contains(other, []byte(link)) {
		t.Error("two recipients have the same link")
	}
	// DKIM signs the new headers, and the signature verifies.
	sig := m.Header.Get("DKIM-Signature")
	if !regexp.MustCompile(`(?i)h=[^;]*list-unsubscribe:[^;]*list-unsubscribe-post`).MatchString(strings.Join(strings.Fields(sig), "")) {
		t.Errorf("DKIM h= does not cover the unsubscribe headers: %s", sig)
	}
	vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(data), &msgdkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name == "s1._domainkey.example.com" {
				return []string{record}, nil
			}
			return nil, fmt.Errorf("no TXT at %s", name)
		}})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("DKIM verify: %v %+v", err, vs)
	}

	// A GET (a scanner following the link) changes nothing.
	res, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="confirm"`) {
		t.Fatalf("GET: %s\n%s", res.Status, page)
	}
	if s := suppressionCSV(t, db); strings.Contains(s, "bob@example.org") {
		t.Fatalf("a GET unsubscribed:\n%s", s)
	}
	// Forged and altered tokens are refused and change nothing.
	token := strings.TrimPrefix(link, base+"/u/")
	flip := map[byte]byte{'A': 'B', 'B': 'A'}
	altered := []byte(token)
	for i := len(altered) - 1; i >= 0; i-- {
		if c, ok := flip[altered[i]]; ok {
			altered[i] = c
			break
		}
		if altered[i] != 'C' {
			altered[i] = 'C'
			break
		}
	}
	for _, bad := range []string{string(altered), token[:len(token)-2], "AQEBAAAAAAAAAAAAAAAAAAAAAA", "x"} {
		if code, _ := providerPost(t, base+"/u/"+bad); code != http.StatusNotFound {
			t.Errorf("POST to a forged link %s: %d, want 404", bad, code)
		}
	}
	if s := suppressionCSV(t, db); strings.Contains(s, "example.org") {
		t.Fatalf("a forged link unsubscribed:\n%s", s)
	}

	// The provider's one-click POST, twice.
	for i := range 2 {
		if code, body := providerPost(t, link); code != http.StatusOK {
			t.Fatalf("one-click POST %d: %d\n%s", i+1, code, body)
		}
	}
	s := suppressionCSV(t, db)
	if strings.Count(s, "@example.org") != 1 || !regexp.MustCompile(`(?m)^bob@example\.org,unsubscribed,unsubscribe-link,[^,]*,first,`).MatchString(s) {
		t.Fatalf("suppression list after the POST:\n%s", s)
	}
	r = mailout(t, nil, "report", "first", "--db", db, "--summary-json")
	var sum struct{ Unsubscribed int }
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Unsubscribed != 1 {
		t.Errorf("report --summary-json: unsubscribed %d (%v)\n%s", sum.Unsubscribed, err, r.stdout)
	}

	// The next campaign to the same recipients skips bob.
	r = mailout(t, nil, "send", "--db", db, "--recipients", list, "--message", msg, "--campaign", "second", "--public-url", base)
	if r.code != exitOK {
		t.Fatalf("second send: %d %s", r.code, r.stderr)
	}
	rows := byEmail(reportRows(t, db, "second"))
	for e, want := range map[string]string{"ann@example.org": "delivered", "bob@example.org": "suppressed", "cid@example.org": "delivered"} {
		if got := rows[e]["state"]; got != want {
			t.Errorf("second campaign: %s is %v, want %s", e, got, want)
		}
	}
}

// {{unsubscribe_url}} without a public URL (a template error, as any
// other: exit 1), and a public URL that providers would not use (a usage
// error, for serve too), are refused before anything is stored.
func TestSendRefusesUnsubscribeWithoutUsablePublicURL(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	list := writeList(t, "ann@example.org")
	r := mailout(t, nil, "send", "--db", db, "--recipients", list,
		"--message", writeMessage(t, testMessage+"Leave: {{unsubscribe_url}}\n"))
	if r.code != exitError || !strings.Contains(r.stderr, "{{unsubscribe_url}}") || !strings.Contains(r.stderr, "--public-url") {
		t.Errorf("send with {{unsubscribe_url}} and no --public-url: %d %s", r.code, r.stderr)
	}
	for _, u := range []string{"http://mail.example.com", "ftp://mail.example.com", "mail.example.com"} {
		r := mailout(t, nil, "send", "--db", db, "--recipients", list, "--message", writeMessage(t, testMessage), "--public-url", u)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--public-url") {
			t.Errorf("send --public-url %s: %d %s", u, r.code, r.stderr)
		}
	}
	r = mailout(t, nil, "serve", "--db", db, "--listen", "127.0.0.1:0", "--public-url", "http://mail.example.com")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--public-url") {
		t.Errorf("serve --public-url http://mail.example.com: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("a refused command left a database: %v", err)
	}
}
