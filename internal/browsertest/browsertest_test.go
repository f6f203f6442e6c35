package browsertest

import (
	"bytes"
	"fmt"
	"html"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// site serves the given pages (path -> HTML) with the web app's Content
// Security Policy, /app.js as a same-origin script and /app.css as the
// style sheet (the policy refuses inline styles and scripts).
func site(t *testing.T, pages map[string]string, appJS string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for path, body := range pages {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; frame-ancestors 'none'")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, body)
		})
	}
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		io.WriteString(w, appJS)
	})
	mux.HandleFunc("GET /app.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		io.WriteString(w, ".faint { color: #aaaaaa; background: #ffffff; }\n.tall { height: 3000px; background: #204060; }\n")
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	ts := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(ts.Close)
	return ts
}

const cleanPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in</title><script src="/app.js"></script></head>
<body>
<main>
<h1>Sign in</h1>
<form method="post" action="/login">
<label for="email">E-mail</label> <input id="email" name="email" type="email" autocomplete="email">
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>`

// badPage has an input without a label and grey text on white (contrast
// about 2.3:1, WCAG asks for 4.5:1).
const badPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Bad</title>
<link rel="stylesheet" href="/app.css"></head>
<body>
<main>
<h1>Import</h1>
<p class="faint" id="hint">Choose the list to import into.</p>
<form><input id="name" type="text" name="name"></form>
</main>
</body>
</html>`

// recorder is a testing.TB that keeps the failures and skips a helper
// reports, so that a test can check them; the rest goes to the real test.
type recorder struct {
	testing.TB
	mu      sync.Mutex
	errors  []string
	skipped string
	fatal   string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skipped = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// inGoroutine runs f on a goroutine of its own, as the testing package runs
// a test, so that recorder's Skipf and Fatalf can end it.
func inGoroutine(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func ruleIDs(vs []Violation) []string {
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
	}
	return ids
}

func TestAxeCleanPagePasses(t *testing.T) {
	ts := site(t, map[string]string{"/": cleanPage}, `/* nothing */`)
	b := New(t)
	if status := b.Navigate(ts.URL + "/"); status != http.StatusOK {
		t.Fatalf("status %d, want 200", status)
	}
	if vs := b.Axe(t); len(vs) != 0 {
		t.Errorf("axe-core found violations on a clean page: %v", vs)
	}
	rec := &recorder{TB: t}
	b.AssertNoSeriousA11y(rec)
	if len(rec.errors) > 0 {
		t.Errorf("AssertNoSeriousA11y failed a clean page: %v", rec.errors)
	}
}

func TestAxeReportsMissingLabelAndLowContrast(t *testing.T) {
	ts := site(t, map[string]string{"/": badPage}, ``)
	b := New(t)
	b.Navigate(ts.URL + "/")
	vs := b.Axe(t)
	ids := ruleIDs(vs)
	for _, want := range []string{"label", "color-contrast"} {
		if !slices.Contains(ids, want) {
			t.Errorf("axe-core rules broken: %v, want %q among them", ids, want)
		}
	}
	for _, v := range vs {
		switch v.ID {
		case "label":
			if len(v.Nodes) != 1 || v.Nodes[0].Target != "#name" {
				t.Errorf("label violation on %+v, want the one element #name", v.Nodes)
			}
		case "color-contrast":
			if len(v.Nodes) != 1 || v.Nodes[0].Target != "#hint" {
				t.Errorf("color-contrast violation on %+v, want the one element #hint", v.Nodes)
			}
		}
	}

	// The assertion a page's test uses fails, naming rule, help and element.
	rec := &recorder{TB: t}
	b.AssertNoSeriousA11y(rec)
	if len(rec.errors) != 1 {
		t.Fatalf("AssertNoSeriousA11y reported %d failures, want 1: %q", len(rec.errors), rec.errors)
	}
	msg := rec.errors[0]
	for _, want := range []string{
		"label (critical): Form elements must have labels", "#name",
		"color-contrast (serious): Elements must meet minimum color contrast ratio thresholds", "#hint",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the failure does not say %q:\n%s", want, msg)
		}
	}
}

func TestScreenshotWritesFullPagePNG(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envArtifacts, dir)
	// Taller than the 800-pixel window: a full-page screenshot has it all.
	tall := `<!doctype html><html lang="en"><head><title>Tall</title><link rel="stylesheet" href="/app.css"></head>
<body><main><h1>Top</h1><div class="tall"></div></main></body></html>`
	ts := site(t, map[string]string{"/": tall}, ``)
	b := New(t)
	b.Navigate(ts.URL + "/")
	path := b.Screenshot("tall page/1")

	want := filepath.Join(dir, "browser", "TestScreenshotWritesFullPagePNG", "tall_page_1.png")
	if path != want {
		t.Errorf("screenshot at %s, want %s", path, want)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("%s is not a PNG (starts with %q)", path, data[:min(len(data), 8)])
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	if h := img.Bounds().Dy(); h < 3000 {
		t.Errorf("screenshot is %d pixels high, want the whole page (at least 3000)", h)
	}
}

func TestCSPViolationIsReported(t *testing.T) {
	inline := `<!doctype html><html lang="en"><head><title>before</title>
<script>document.title = 'inline script ran';</script></head>
<body><main><h1>Inline</h1></main></body></html>`
	ts := site(t, map[string]string{"/inline": inline, "/": cleanPage}, `/* same origin: allowed */`)
	b := New(t)

	// A page that keeps to the policy: nothing reported.
	b.Navigate(ts.URL + "/")
	if vs := b.CSPViolations(); len(vs) != 0 {
		t.Errorf("violations on a page that keeps to its policy: %v", vs)
	}
	rec := &recorder{TB: t}
	b.AssertNoConsoleErrors(rec)
	b.AssertNoCSPViolations(rec)
	if len(rec.errors) != 0 {
		t.Errorf("assertions failed on a clean page: %q", rec.errors)
	}

	b.Navigate(ts.URL + "/inline")
	vs := b.WaitCSPViolation()
	if len(vs) != 1 {
		t.Fatalf("got %d violations, want 1: %v", len(vs), vs)
	}
	v := vs[0]
	if v.Directive != "script-src-elem" || v.BlockedURI != "inline" || v.Document != ts.URL+"/inline" {
		t.Errorf("violation %+v, want script-src-elem refusing inline on %s/inline", v, ts.URL)
	}
	if v.Line != 2 {
		t.Errorf("violation on line %d, want 2", v.Line)
	}
	if title := b.Title(); title != "before" {
		t.Errorf("title %q: the inline script ran", title)
	}
	// Chromium's console shows the refusal too.
	var security []ConsoleMessage
	for _, m := range b.ConsoleErrors() {
		if m.Source == "security" {
			security = append(security, m)
		}
	}
	if len(security) != 1 || !strings.Contains(security[0].Text, "Content Security Policy") {
		t.Errorf("console errors from security: %v, want the CSP refusal", security)
	}

	// The assertions a page's test uses fail, saying what was refused.
	rec = &recorder{TB: t}
	b.AssertNoCSPViolations(rec)
	b.AssertNoConsoleErrors(rec)
	if len(rec.errors) != 2 {
		t.Fatalf("assertions reported %d failures, want 2: %q", len(rec.errors), rec.errors)
	}
	if !strings.Contains(rec.errors[0], "script-src-elem refused inline on "+ts.URL+"/inline") {
		t.Errorf("AssertNoCSPViolations said:\n%s", rec.errors[0])
	}

	// ClearLogs starts afresh.
	b.ClearLogs()
	b.Navigate(ts.URL + "/")
	if vs := b.CSPViolations(); len(vs) != 0 {
		t.Errorf("violations after ClearLogs on a clean page: %v", vs)
	}
}

func TestConsoleErrorsAreCollected(t *testing.T) {
	page := `<!doctype html><html lang="en"><head><title>Errors</title><script src="/app.js"></script></head>
<body><main><h1>Errors</h1></main></body></html>`
	ts := site(t, map[string]string{"/": page}, `console.error("list", "not found:", 42); setTimeout(() => { throw new Error("boom"); }, 0);`)
	b := New(t)
	b.Navigate(ts.URL + "/")
	msgs := b.ConsoleErrors()
	var texts []string
	for _, m := range msgs {
		texts = append(texts, m.Source+": "+m.Text)
	}
	wantConsole, wantException := "console: list not found: 42", "exception: Uncaught Error: boom"
	if !slices.Contains(texts, wantConsole) || !slices.ContainsFunc(texts, func(s string) bool { return strings.HasPrefix(s, wantException) }) {
		t.Errorf("console errors %q, want %q and %q...", texts, wantConsole, wantException)
	}
}

func TestFormHelpersDriveAPage(t *testing.T) {
	form := `<!doctype html><html lang="en"><head><title>Form</title></head><body><main>
<p id="lang">%s</p>
<form method="post" action="/submit" enctype="multipart/form-data">
<label for="name">Name</label> <input id="name" name="name" value="old">
<label for="note">Note</label> <textarea id="note" name="note"></textarea>
<label for="kind">Kind</label> <select id="kind" name="kind"><option>relay</option><option>direct</option></select>
<label for="file">List</label> <input id="file" name="file" type="file" style="display:none">
<button id="send" type="submit">Send</button>
</form></main></body></html>`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, form, html.EscapeString(r.Header.Get("Accept-Language")))
	})
	mux.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
		f, fh, err := r.FormFile("file")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer f.Close()
		content, _ := io.ReadAll(f)
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Done</title></head><body><main><pre id="result">%s</pre></main></body></html>`,
			html.EscapeString(fmt.Sprintf("%s|%s|%s|%s|%s", r.FormValue("name"), r.FormValue("note"), r.FormValue("kind"), fh.Filename, content)))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	upload := filepath.Join(t.TempDir(), "list.csv")
	if err := os.WriteFile(upload, []byte("email\nana@example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := New(t)
	b.SetAcceptLanguage("es-ES,es")
	b.Navigate(ts.URL + "/")
	if got := b.Text("#lang"); got != "es-ES,es;q=0.9" {
		t.Errorf("the server saw Accept-Language %q", got)
	}
	if got := Eval[string](b, "navigator.language"); got != "es-ES" {
		t.Errorf("navigator.language = %q, want es-ES", got)
	}
	b.Fill("#name", "Ana María")
	if got := b.Value("#name"); got != "Ana María" {
		t.Errorf("name field holds %q after Fill", got)
	}
	// An empty textarea has no text node to clear.
	b.Fill("#note", "Hola")
	b.Select("#kind", "direct")
	b.UploadFile("#file", upload)
	b.ClickAndWaitLoad("#send")
	if got, want := b.Text("#result"), "Ana María|Hola|direct|list.csv|email\nana@example.com\n"; got != want {
		t.Errorf("the server got %q, want %q", got, want)
	}
	if got := b.URL(); got != ts.URL+"/submit" {
		t.Errorf("at %s after submitting, want %s/submit", got, ts.URL)
	}
}

// Without Chromium (a laptop that never ran the set-up script) the browser
// tests skip; in CI (MAILOUT_REQUIRE_PEERS=1) they fail and say what to run.
func TestNewWithoutChromiumSkipsOrFails(t *testing.T) {
	t.Setenv("MAILOUT_PEERS_ENV", filepath.Join(t.TempDir(), "no-env-file"))
	t.Setenv(envChromium, "")

	t.Setenv(requireVar, "")
	rec := &recorder{TB: t}
	inGoroutine(func() { New(rec) })
	if !strings.Contains(rec.skipped, "MAILOUT_CHROMIUM is not set") || rec.fatal != "" {
		t.Errorf("without MAILOUT_REQUIRE_PEERS: skipped %q, failed %q; want a skip naming MAILOUT_CHROMIUM", rec.skipped, rec.fatal)
	}

	t.Setenv(requireVar, "1")
	rec = &recorder{TB: t}
	inGoroutine(func() { New(rec) })
	if !strings.Contains(rec.fatal, "scripts/test-setup.sh") || rec.skipped != "" {
		t.Errorf("with MAILOUT_REQUIRE_PEERS=1: skipped %q, failed %q; want a failure naming scripts/test-setup.sh", rec.skipped, rec.fatal)
	}

	t.Setenv(envChromium, filepath.Join(t.TempDir(), "no-such-chromium"))
	rec = &recorder{TB: t}
	inGoroutine(func() { New(rec) })
	if !strings.Contains(rec.fatal, "no-such-chromium") {
		t.Errorf("with a missing executable: failed %q, want it named", rec.fatal)
	}
}

// A configured browser that does not start fails the test, with what it
// printed, even where peers are not required: the set-up is broken.
func TestNewFailsWhenChromiumDoesNotStart(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in browser is a shell script")
	}
	broken := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envChromium, broken)
	t.Setenv(requireVar, "")
	rec := &recorder{TB: t}
	inGoroutine(func() { New(rec) })
	if rec.skipped != "" || !strings.Contains(rec.fatal, "starting "+broken) || !strings.Contains(rec.fatal, "cannot open display") {
		t.Errorf("skipped %q, failed %q; want a failure naming %s and its output", rec.skipped, rec.fatal, broken)
	}
}
