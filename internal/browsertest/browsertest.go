// Package browsertest drives a real headless Chromium for the browser tests
// of the web app: a test opens pages of an httptest server, fills forms,
// clicks, reads text, takes screenshots, checks accessibility with axe-core
// and asserts that the page wrote no console error and broke no Content
// Security Policy rule.
//
// Place in the data flow: none — it is test support, like internal/peertest.
//
//	test ──DevTools protocol (chromedp)──> chromium --headless ──HTTP──> httptest server (127.0.0.1)
//	                                           │
//	     <── console errors, CSP violations ───┘   axe.min.js injected on demand
//
// Chromium and axe-core are not part of mailout: scripts/test-setup.sh
// installs them (Debian's chromium, axe-core from npm into
// /var/lib/mailout-peers/axe) and writes their paths into the peers' env
// file as MAILOUT_CHROMIUM and MAILOUT_AXE; variables of the same name in the
// process environment take precedence. When one is missing the test is
// skipped, unless MAILOUT_REQUIRE_PEERS=1 (CI), where it fails.
//
// Every step (a navigation, a click, a wait) has its own deadline,
// Browser.Timeout, and a step that fails or times out fails the test with a
// screenshot of the page at that moment. Screenshots go into the artefacts
// directory: $MAILOUT_ARTIFACTS/browser/<test name>/ when MAILOUT_ARTIFACTS
// is set (scripts/test.sh sets it), else the same below the system's
// temporary directory; the test logs each file it writes.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"mailout/internal/peertest"
)

// Environment variables, shared with scripts/test-setup.sh and
// scripts/test.sh.
const (
	envChromium  = "MAILOUT_CHROMIUM"
	envAxe       = "MAILOUT_AXE"
	envArtifacts = "MAILOUT_ARTIFACTS"
	requireVar   = "MAILOUT_REQUIRE_PEERS"
)

// DefaultTimeout is the deadline of one step unless Browser.Timeout says
// otherwise.
const DefaultTimeout = 15 * time.Second

// startTimeout bounds the start of Chromium (a cold start on a busy
// two-core machine takes a few seconds).
const startTimeout = time.Minute

// setupHint tells a person what to run when Chromium or axe-core is missing.
const setupHint = "run scripts/test-setup.sh (as root, or it re-runs itself with sudo) to install Chromium and axe-core"

// ErrUnavailable is wrapped by the error that says why Chromium or axe-core
// cannot be used (not configured, not installed).
var ErrUnavailable = errors.New("browsertest: not available")

// Browser is one headless Chromium with one tab, for one test. Its methods
// must be called from the test's goroutine: a failing step calls t.Fatal.
type Browser struct {
	// Timeout is the deadline of each step; DefaultTimeout when zero.
	Timeout time.Duration

	t   testing.TB
	ctx context.Context // the tab; lives until the test's cleanup

	axeFile string // MAILOUT_AXE, read when New runs
	axeJS   string // its content, read on the first Axe

	mu       sync.Mutex
	console  []ConsoleMessage
	csp      []CSPViolation
	changed  chan struct{} // closed and replaced when console or csp grows
	failures int           // screenshots taken on failure, for their names
}

// Chromium returns the path of the Chromium executable the tests use
// (MAILOUT_CHROMIUM), or an error wrapping ErrUnavailable that says why
// there is none.
func Chromium() (string, error) {
	path := peertest.Setting(envChromium)
	if path == "" {
		return "", fmt.Errorf("%w: %s is not set in the environment or the peers' env file", ErrUnavailable, envChromium)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: %s=%s: %w", ErrUnavailable, envChromium, path, err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("%w: %s=%s is a directory", ErrUnavailable, envChromium, path)
	}
	return path, nil
}

// unavailable skips the test, or fails it when peers are required.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if peertest.RequirePeers() {
		t.Fatalf("browser required (%s=1) but unavailable: %v; %s", requireVar, err, setupHint)
	}
	t.Skipf("browser unavailable: %v; %s", err, setupHint)
}

// New starts a headless Chromium with a fresh profile under t.TempDir() and
// opens one tab, which collects console errors and CSP violations from then
// on. The browser is closed when the test ends. When Chromium is not
// configured the test is skipped, or fails when MAILOUT_REQUIRE_PEERS=1.
func New(t testing.TB) *Browser {
	t.Helper()
	exe, err := Chromium()
	if err != nil {
		unavailable(t, err)
	}
	b := &Browser{t: t, axeFile: peertest.Setting(envAxe), changed: make(chan struct{})}
	profile := filepath.Join(t.TempDir(), "profile")
	var chromeOut lockedBuffer
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		// Containers and CI runners give no user namespaces for the
		// sandbox; the pages are the test's own.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Nothing but the test's pages on loopback: no QUIC, no update
		// checks, no sync, no background requests to anywhere.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(&chromeOut),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(b.onEvent))
	b.ctx = tabCtx
	// Registered after t.TempDir: runs before the profile is removed.
	t.Cleanup(func() {
		closeCtx, cancel := context.WithTimeout(tabCtx, 10*time.Second)
		defer cancel()
		_ = chromedp.Cancel(closeCtx) // closes the browser gracefully
		cancelTab()
		cancelAlloc() // waits for the process to exit
	})

	// The first action starts the browser and binds it to the context it
	// is given, so it gets the tab's context itself; a timer bounds it.
	timer := time.AfterFunc(startTimeout, cancelTab)
	err = chromedp.Do(tabCtx, chromedp.Func(b.install))
	timer.Stop()
	if err == nil {
		// The timer may have fired just as the start succeeded.
		err = tabCtx.Err()
	}
	if err != nil {
		out := strings.TrimSpace(chromeOut.String())
		if tabCtx.Err() != nil {
			err = fmt.Errorf("did not start within %v: %w", startTimeout, err)
		}
		t.Fatalf("starting %s: %v\nits output:\n%s", exe, err, out)
	}
	return b
}

// install prepares the tab: the CSP violation reporter runs in every
// document before the page's own scripts.
func (b *Browser) install(ctx context.Context, tg *chromedp.Target) error {
	if _, err := cdp.Call(ctx, tg, runtime.AddBinding, runtime.AddBindingParams{Name: cspBinding}); err != nil {
		return fmt.Errorf("adding the CSP binding: %w", err)
	}
	if _, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: cspReporter}); err != nil {
		return fmt.Errorf("adding the CSP reporter: %w", err)
	}
	return nil
}

func (b *Browser) timeout() time.Duration {
	if b.Timeout > 0 {
		return b.Timeout
	}
	return DefaultTimeout
}

// step runs actions with the step deadline; an error fails the test with
// what was being done and a screenshot of the page.
func (b *Browser) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout())
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// value runs one action that returns a value, with the step deadline.
func value[T any](b *Browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout())
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail(what, err)
	}
	return v
}

// fail ends the test with err and a screenshot of the page as it was.
func (b *Browser) fail(what string, err error) {
	b.t.Helper()
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("not done within %v: %w", b.timeout(), err)
	}
	b.mu.Lock()
	b.failures++
	name := fmt.Sprintf("failure-%d", b.failures)
	b.mu.Unlock()
	shot := "none"
	if path, serr := b.screenshot(name); serr == nil {
		shot = path
	} else {
		shot = "none (" + serr.Error() + ")"
	}
	b.t.Fatalf("browser: %s: %v\nscreenshot: %s", what, err, shot)
}

// Context returns the tab's context, for chromedp actions that have no
// helper here. Give it a deadline: it lives until the test ends.
func (b *Browser) Context() context.Context { return b.ctx }

// Do runs chromedp actions with the step deadline; what names them in the
// failure message.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.step(what, actions...)
}

// Navigate loads url and waits for its load event; it returns the HTTP
// status of the document (an error page is not a failure of the step).
func (b *Browser) Navigate(url string) int {
	b.t.Helper()
	resp := value(b, "navigating to "+url, chromedp.NavigateResponse(url))
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// URL returns the address of the current document.
func (b *Browser) URL() string {
	b.t.Helper()
	return value(b, "reading the location", chromedp.Location())
}

// Title returns the title of the current document.
func (b *Browser) Title() string {
	b.t.Helper()
	return value(b, "reading the title", chromedp.Title())
}

// Fill empties the input or textarea that the CSS selector matches and
// types value into it, key by key (the page sees input events as from a
// person).
func (b *Browser) Fill(selector, value string) {
	b.t.Helper()
	sel := chromedp.CSS(selector)
	// Emptied through its value: chromedp.Clear fails on an empty
	// textarea, which has no text node, and chromedp.SetValue on "".
	b.step(fmt.Sprintf("filling %s", selector),
		chromedp.WaitVisible(sel),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).value = ""`, jsString(selector))),
		chromedp.SendKeys(sel, value))
}

// Select chooses the option of value in the select element that the CSS
// selector matches, and fires its input and change events.
func (b *Browser) Select(selector, value string) {
	b.t.Helper()
	sel := chromedp.CSS(selector)
	b.step(fmt.Sprintf("selecting %q in %s", value, selector),
		chromedp.WaitVisible(sel),
		chromedp.SetValue(sel, value),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`(() => { const e = document.querySelector(%s);
			e.dispatchEvent(new Event('input', {bubbles: true}));
			e.dispatchEvent(new Event('change', {bubbles: true})); })()`, jsString(selector))))
}

// Click clicks the middle of the element that the CSS selector matches,
// once it is visible.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	b.step("clicking "+selector, chromedp.Click(chromedp.CSS(selector)))
}

// ClickAndWaitLoad clicks like Click and waits for the document that the
// click loads (a link, a form's submit button).
func (b *Browser) ClickAndWaitLoad(selector string) {
	b.t.Helper()
	value(b, "clicking "+selector+" and waiting for the next page",
		chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(selector))))
}

// WaitVisible waits until the element that the CSS selector matches is
// there and visible.
func (b *Browser) WaitVisible(selector string) {
	b.t.Helper()
	b.step("waiting for "+selector+" to be visible", chromedp.WaitVisible(chromedp.CSS(selector)))
}

// WaitNotPresent waits until nothing matches the CSS selector.
func (b *Browser) WaitNotPresent(selector string) {
	b.t.Helper()
	b.step("waiting for "+selector+" to go", chromedp.WaitNotPresent(chromedp.CSS(selector)))
}

// Text returns the visible text (innerText) of the element that the CSS
// selector matches, once it is visible.
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	sel := chromedp.CSS(selector)
	b.step("waiting for "+selector+" to be visible", chromedp.WaitVisible(sel))
	return value(b, "reading the text of "+selector, chromedp.Text(sel))
}

// Value returns the current value of the form field that the CSS selector
// matches.
func (b *Browser) Value(selector string) string {
	b.t.Helper()
	return value(b, "reading the value of "+selector, chromedp.Value(chromedp.CSS(selector)))
}

// UploadFile sets path as the file of the input[type=file] that the CSS
// selector matches (the field may be hidden behind a styled label).
func (b *Browser) UploadFile(selector, path string) {
	b.t.Helper()
	abs, err := filepath.Abs(path)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		b.t.Fatalf("browser: uploading %s into %s: %v", path, selector, err)
	}
	b.step(fmt.Sprintf("uploading %s into %s", path, selector),
		chromedp.SetUploadFiles(chromedp.CSS(selector), []string{abs}))
}

// Eval evaluates a JavaScript expression in the page and decodes its
// JSON value into T; a promise is awaited.
func Eval[T any](b *Browser, expression string) T {
	b.t.Helper()
	return value(b, "evaluating "+shorten(expression), chromedp.Evaluate[T](expression, chromedp.EvalAwaitPromise))
}

// SetAcceptLanguage makes the browser ask for langs (language tags in the
// order of preference, such as "es" or "es-ES,es") from the next request
// on, and report them as navigator.language(s): how a person's browser
// picks the language of the pages. The browser adds the q-values itself:
// "es-ES,es" is sent as "Accept-Language: es-ES,es;q=0.9".
func (b *Browser) SetAcceptLanguage(langs string) {
	b.t.Helper()
	b.step("setting the browser languages to "+langs, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{})
		if err != nil {
			return fmt.Errorf("reading the user agent: %w", err)
		}
		_, err = cdp.Call(ctx, tg, emulation.SetUserAgentOverride,
			emulation.SetUserAgentOverrideParams{UserAgent: v.UserAgent, AcceptLanguage: langs})
		return err
	}))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&sb, `\u%04x`, r)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// lockedBuffer collects Chromium's output, written by the allocator's
// goroutine and read by the test on a failed start.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() < 64<<10 {
		w.buf.Write(p)
	}
	return len(p), nil
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
