package web

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"mailout/internal/browsertest"
	"mailout/internal/campaign"
	"mailout/internal/doctor"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/store"
)

// The browser tests drive the handler of web.New, served by httptest on
// loopback, with a real headless Chromium (internal/browsertest): the same
// pages, scripts, security headers and event stream a person gets from
// mailout serve, whose own wiring is tested in cmd/mailout. In-process,
// the test can create campaigns through the campaign service as the
// command line does and start them while a page is open, and runs under
// the race detector with the handler tests. Without Chromium the tests are
// skipped (they fail when MAILOUT_REQUIRE_PEERS=1).

// docsImages makes TestBrowserNewcomer write the README's screenshot of a
// campaign's page, docs/img/campaign.png:
//
//	go test ./internal/web/ -run TestBrowserNewcomer -docs-images
var docsImages = flag.Bool("docs-images", false, "write the README's screenshots into docs/img")

// docsImage copies the screenshot at shot to docs/img/name when
// -docs-images is given.
func docsImage(t *testing.T, shot, name string) {
	t.Helper()
	if !*docsImages {
		return
	}
	png, err := os.ReadFile(shot)
	if err == nil {
		err = os.WriteFile("../../docs/img/"+name, png, 0o644)
	}
	if err != nil {
		t.Fatalf("writing docs/img/%s: %v", name, err)
	}
	t.Logf("wrote docs/img/%s (%d bytes)", name, len(png))
}

// tour is one person's visit of the app in one browser: every page it
// opens is checked the same way and saved as a screenshot.
type tour struct {
	t     *testing.T
	a     *app
	b     *browsertest.Browser
	shot  int  // screenshots taken, to number them in the order of the visit
	phone bool // the window is a phone's (onPhone)
}

func newTour(t *testing.T, a *app) *tour {
	t.Helper()
	return &tour{t: t, a: a, b: browsertest.New(t)}
}

// open loads path and checks the page, which must answer 200; it returns
// the path of its screenshot.
func (u *tour) open(name, path string) string {
	u.t.Helper()
	if st := u.b.Navigate(u.a.srv.URL + path); st != http.StatusOK {
		u.b.Screenshot(fmt.Sprintf("%02d-%s", u.shot+1, name))
		u.t.Fatalf("GET %s: status %d, want 200", path, st)
	}
	return u.check(name)
}

// check saves a screenshot of the current page and asserts what every page
// must satisfy: no serious or critical accessibility violation, no console
// error, nothing refused by the Content Security Policy. The logs start
// afresh for the next page, so that a failure names its page.
func (u *tour) check(name string) (screenshot string) {
	u.t.Helper()
	u.shot++
	screenshot = u.b.Screenshot(fmt.Sprintf("%02d-%s", u.shot, name))
	u.b.AssertNoSeriousA11y(u.t)
	u.b.AssertNoConsoleErrors(u.t)
	u.b.AssertNoCSPViolations(u.t)
	u.b.ClearLogs()
	u.checkLayout()
	return screenshot
}

// layoutProblems lists, in the page, what a person would see as broken
// layout: the page wider than the window (a sideways scroll bar), and a
// form field of the content beside its label instead of below it (every
// form in the app puts the label above its field; radio buttons and
// check boxes excepted).
const layoutProblems = `(() => {
	const out = [];
	const root = document.documentElement;
	if (root.scrollWidth > root.clientWidth) {
		out.push("the page is " + root.scrollWidth + " px wide in a window of " + root.clientWidth + " px");
	}
	document.querySelectorAll("main label[for]").forEach((l) => {
		const f = document.getElementById(l.htmlFor);
		if (!f || f.type === "radio" || f.type === "checkbox" || f.type === "hidden") { return; }
		const lr = l.getBoundingClientRect(), fr = f.getBoundingClientRect();
		if (lr.height === 0 || fr.height === 0) { return; }
		if (lr.bottom > fr.top + 1) {
			out.push("the field #" + f.id + " is beside its label \"" + l.textContent.trim() + "\", not below it");
		}
	});
	return out;
})()`

// checkLayout fails the test on the problems layoutProblems finds.
func (u *tour) checkLayout() {
	u.t.Helper()
	for _, p := range browsertest.Eval[[]string](u.b, layoutProblems) {
		u.t.Errorf("layout of %s: %s", u.path(), p)
	}
	// A phone widens its layout to what the page needs (then shows it
	// smaller): the page must fit the phone's width.
	if w := browsertest.Eval[int](u.b, `window.innerWidth`); u.phone && w != phoneWidth {
		wide := browsertest.Eval[[]string](u.b, `[...document.querySelectorAll("main *")].
			filter((e) => e.getBoundingClientRect().right > `+fmt.Sprint(phoneWidth)+`).
			slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : "") + " " + Math.round(e.getBoundingClientRect().right))`)
		u.t.Errorf("layout of %s: %d px wide on a %d px phone; too wide: %v", u.path(), w, phoneWidth, wide)
	}
}

// checkRefused is check for a page that answers an error status on
// purpose (a wrong password: 401): Chromium logs the document's own status
// as a console error, which is then the only one allowed.
func (u *tour) checkRefused(name string, status int) {
	u.t.Helper()
	u.shot++
	u.b.Screenshot(fmt.Sprintf("%02d-%s", u.shot, name))
	u.b.AssertNoSeriousA11y(u.t)
	u.b.AssertNoCSPViolations(u.t)
	url := u.b.URL()
	for _, m := range u.b.ConsoleErrors() {
		if m.Source != "network" || m.URL != url || !strings.Contains(m.Text, fmt.Sprintf("status of %d", status)) {
			u.t.Errorf("the browser console showed an error on %s: %s", url, m)
		}
	}
	u.b.ClearLogs()
}

// phoneWidth is the width of a phone's window, in CSS pixels.
const phoneWidth, phoneHeight = 390, 844

// onPhone runs f with the window as wide as a phone's (a mobile viewport:
// the page's own viewport meta tag applies), then back to the desktop.
func (u *tour) onPhone(f func()) {
	u.t.Helper()
	u.b.Do("emulating a phone", chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile))
	u.phone = true
	f()
	u.phone = false
	// Not chromedp.EmulateReset: it leaves the window at the phone's
	// width, and resets the browser's languages.
	u.b.Do("back to the desktop window", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: false})
		return err
	}))
	if w := browsertest.Eval[int](u.b, `window.innerWidth`); w == phoneWidth {
		u.t.Fatalf("back from the phone, the window is still %d px wide", w)
	}
}

// chooseLanguage picks lang in the language menu, as a person does with
// the mouse: the page's script sends the form at once, and the same page
// comes back in that language.
func (u *tour) chooseLanguage(lang string) {
	u.t.Helper()
	before := u.path()
	u.b.Do("choosing "+lang+" in the language menu", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.WaitEvent(cdppage.LoadEventFired, nil, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`(() => { const s = document.getElementById("lang-select"); s.value = %q;
			s.dispatchEvent(new Event("change", {bubbles: true})); })()`, lang)))(ctx, tg)
		return err
	}))
	if p := u.path(); p != before {
		u.t.Errorf("the language menu went from %s to %s, want the same page", before, p)
	}
	if got := u.b.Value("#lang-select"); got != lang {
		u.t.Errorf("after choosing %s the language menu shows %s", lang, got)
	}
	u.wantLang(lang)
}

// wantLang fails unless the page says it is in lang.
func (u *tour) wantLang(lang string) {
	u.t.Helper()
	if got := browsertest.Eval[string](u.b, `document.documentElement.lang`); got != lang {
		u.t.Errorf("%s is in %q, want %q", u.path(), got, lang)
	}
}

// submit clicks the selector (a submit button) and waits for the page the
// form leads to, which is then checked.
func (u *tour) submit(name, selector string) {
	u.t.Helper()
	u.b.ClickAndWaitLoad(selector)
	u.check(name)
}

// path is the current document's path and query.
func (u *tour) path() string {
	u.t.Helper()
	return strings.TrimPrefix(u.b.URL(), u.a.srv.URL)
}

// wantText fails unless the element's visible text contains want.
func (u *tour) wantText(selector, want string) {
	u.t.Helper()
	if got := u.b.Text(selector); !strings.Contains(got, want) {
		u.t.Errorf("%s on %s reads %q, want it to contain %q", selector, u.path(), got, want)
	}
}

// waitText waits (one step's deadline) until the element's text contains
// want: the page changes it itself, from the event stream.
func (u *tour) waitText(selector, want string) {
	u.t.Helper()
	u.b.Do(fmt.Sprintf("waiting for %s to read %q", selector, want),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%q);
			return e !== null && e.textContent.includes(%q); })()`, selector, want), chromedp.WithPollingInterval(50e6)))
}

// setUpAndSignIn is the first run: the set-up page creates the
// administrator and signs in; then sign out and sign in again.
func (u *tour) setUpAndSignIn() {
	u.t.Helper()
	u.open("setup", "/login") // no administrator yet: the sign-in page sends to set-up
	if p := u.path(); p != "/setup" {
		u.t.Fatalf("the first visit of /login ends on %s, want /setup", p)
	}
	u.wantText("h1", "First run")
	u.b.Fill("#email", adminEmail)
	u.b.Fill("#password", adminPassword)
	u.b.Fill("#password2", adminPassword)
	u.submit("campaigns-empty", "main button[type=submit]")
	if p := u.path(); p != "/campaigns" {
		u.t.Fatalf("after set-up the browser is on %s, want /campaigns", p)
	}
	u.wantText("main", "No campaigns yet")

	u.submit("signed-out", "form.logout button")
	if p := u.path(); p != "/login" {
		u.t.Fatalf("after signing out the browser is on %s, want /login", p)
	}
	u.wantText("h1", "Sign in")
	// Signed out, a page sends back to the sign-in page.
	u.b.Navigate(u.a.srv.URL + "/campaigns")
	if p := u.path(); p != "/login" {
		u.t.Fatalf("signed out, /campaigns shows %s, want /login", p)
	}
	u.b.Fill("#email", adminEmail)
	u.b.Fill("#password", "not the password")
	u.b.ClickAndWaitLoad("main button[type=submit]")
	u.checkRefused("login-wrong", http.StatusUnauthorized)
	u.wantText(".alert", "Wrong e-mail address or password")
	u.b.Fill("#email", adminEmail)
	u.b.Fill("#password", adminPassword)
	u.submit("signed-in", "main button[type=submit]")
	if p := u.path(); p != "/campaigns" {
		u.t.Fatalf("after signing in the browser is on %s, want /campaigns", p)
	}
}

// watchLive opens the campaign's page before it is sent, starts it as
// another front end would (the campaign service through the runner), and
// waits for the page, unreloaded, to show every message sent: the numbers
// come from the server-sent events.
// finished and done are the page's "Finished: done" and "done" in the
// browser's language.
func (u *tour) watchLive(c *store.Campaign, total int, finished, done string) {
	u.t.Helper()
	path := fmt.Sprintf("/campaigns/%d", c.ID)
	u.open("campaign-pending", path)
	u.wantText("[data-field=percent_text]", "0%")
	// A mark the page keeps only as long as it is not reloaded.
	browsertest.Eval[bool](u.b, `window.mailoutTour = true`)
	if err := u.a.runner.Start(context.Background(), c.ID); err != nil {
		u.t.Fatal(err)
	}
	u.waitText("[data-field=percent_text]", "100%")
	u.waitText("[data-field=live]", finished)
	u.wantText("[data-field=delivered]", fmt.Sprint(total))
	u.wantText("[data-field=status_text]", done)
	if v := browsertest.Eval[float64](u.b, `document.getElementById("bar").value`); v != 100 {
		u.t.Errorf("the progress bar is at %v, want 100", v)
	}
	// What the campaign's end leaves to do: no more start or cancel, in
	// the colour of its status.
	u.b.WaitNotPresent(`form[action$="/start"], form[action$="/cancel"]`)
	u.b.WaitVisible(".status.done")
	if !browsertest.Eval[bool](u.b, `window.mailoutTour === true`) {
		u.t.Error("the page was reloaded: the progress did not come live")
	}
	u.check("campaign-done")
}

// newList makes the list "members" on the lists pages and imports a CSV
// of Ann, Bob and Cid with one bad row between them: the result names
// that row's line and why, and the three others are in the list.
// imported is the import's summary in the browser's language.
func (u *tour) newList(imported string) *store.List {
	u.t.Helper()
	csv := filepath.Join(u.t.TempDir(), "members.csv")
	rows := "email,first_name\nann@example.org,Ann\nbob@example.org,Bob\nnot-an-address,Zed\ncid@example.org,Cid\n"
	if err := os.WriteFile(csv, []byte(rows), 0o644); err != nil {
		u.t.Fatal(err)
	}
	u.open("lists-empty", "/lists")
	u.b.Fill("#list-name", "members")
	u.submit("list-created", `form[action="/lists"] button[type=submit]`)
	page, _, _ := strings.Cut(u.path(), "?")
	if !strings.HasPrefix(page, "/lists/") {
		u.t.Fatalf("creating a list led to %s, want the list's page", page)
	}
	u.wantText("h1", "members")
	u.b.UploadFile("#file", csv)
	u.submit("list-imported", `form[action$="/import"] button[type=submit]`)
	u.wantText("main [role=status]", imported)
	rejected := u.b.Text("main tbody")
	if !strings.Contains(rejected, "4") || !strings.Contains(rejected, "not-an-address") {
		u.t.Errorf("the rejected rows read %q, want line 4 with not-an-address", rejected)
	}
	u.b.ClickAndWaitLoad(`main a[href="` + page + `"]`)
	u.check("list")
	for _, who := range []string{"ann@example.org", "bob@example.org", "cid@example.org"} {
		u.wantText("main", who)
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(page, "/lists/"), 10, 64)
	if err != nil {
		u.t.Fatal(err)
	}
	l, err := u.a.svc.Store().List(context.Background(), id)
	if err != nil {
		u.t.Fatal(err)
	}
	return l
}

// compose writes a campaign to the list on the compose page, with a merge
// field in the subject and the text, previews it for Bob, creates and
// starts it to the sandbox, and follows it on its page to the end. It
// returns the campaign's page.
func (u *tour) compose(l *store.List) string {
	u.t.Helper()
	u.open("campaigns-before-compose", "/campaigns")
	u.b.ClickAndWaitLoad(`main a[href="/campaigns/new"]`)
	u.check("compose")
	u.wantText("h1", "New campaign")
	if got := u.b.Value("#c-list"); got != fmt.Sprint(l.ID) {
		u.t.Errorf("the compose page proposes the list %s, want the only one, %d", got, l.ID)
	}
	u.b.Fill("#c-name", "spring")
	u.b.Fill("#c-from", "Shop <news@example.com>")
	// The merge field's button inserts it where the cursor is.
	u.b.Fill("#c-subject", "Hello ")
	u.b.Click(`button.insert[data-insert="{{.first_name}}"]`)
	u.b.Fill("#c-text", "Dear ")
	u.b.Click(`button.insert[data-insert="{{.first_name}}"]`)
	u.b.Fill("#c-html", "<h1>Hello {{.first_name}}</h1>")
	if got := u.b.Value("#c-subject"); got != "Hello {{.first_name}}" {
		u.t.Errorf("the subject reads %q after inserting the merge field", got)
	}
	if got := u.b.Value("#c-text"); got != "Dear {{.first_name}}" {
		u.t.Errorf("the text reads %q after inserting the merge field", got)
	}
	// The preview follows the form: choosing Bob shows his message.
	bob := browsertest.Eval[string](u.b, `[...document.querySelectorAll("#c-sub option")].find((o) => o.textContent.includes("bob@example.org")).value`)
	u.b.Select("#c-sub", bob)
	u.waitText("#preview", "Hello Bob")
	u.wantText("#preview", "bob@example.org")
	u.wantText("#preview pre", "Dear Bob")
	u.b.WaitVisible("#preview iframe.mail[sandbox]")
	u.check("compose-preview")
	// The Preview button does the same without script.
	u.submit("compose-previewed", `button[name=action][value=preview]`)
	u.wantText("#preview", "Hello Bob")

	u.b.ClickAndWaitLoad(`button[name=action][value=start]`)
	page, _, _ := strings.Cut(u.path(), "?")
	if !strings.HasPrefix(page, "/campaigns/") {
		u.t.Fatalf("create and start led to %s, want the campaign's page", page)
	}
	u.wantText("h1", "spring")
	u.waitText("[data-field=percent_text]", "100%")
	u.waitText("[data-field=live]", "Finished: done")
	u.wantText("[data-field=delivered]", "3")
	u.b.WaitNotPresent(`form[action$="/start"], form[action$="/cancel"]`)
	u.check("campaign-spring")
	return page
}

// TestBrowserNewcomer follows what a newcomer does: set up the app, sign
// out and in, make a list, compose a campaign with a merge field, preview
// it for one subscriber, create and start it to the sandbox and follow it
// to its end, read its recipient log, open its kept messages and one of
// them, look at the doctor; watch a campaign started elsewhere progress
// live on its open page; then the same pages on a phone.
func TestBrowserNewcomer(t *testing.T) {
	a := newApp(t)
	u := newTour(t, a)
	u.setUpAndSignIn()

	l := u.newList("3 added, 0 updated, 1 rejected")
	spring := u.compose(l)

	u.b.ClickAndWaitLoad(`a[href="` + spring + `/recipients"]`)
	u.check("recipients")
	u.wantText("tbody", "bob@example.org")
	u.wantText("tbody", "Delivered")

	u.open("inbox", "/inbox")
	u.b.ClickAndWaitLoad(`a[href="` + strings.Replace(spring, "/campaigns/", "/inbox/", 1) + `"]`)
	u.check("inbox-campaign")
	u.wantText("tbody", "Hello Bob")
	u.b.ClickAndWaitLoad("tbody tr:first-child a")
	u.check("inbox-message")
	u.wantText("h1", "Hello Ann")
	u.wantText("pre.mail-text", "Dear Ann")
	if got := browsertest.Eval[string](u.b, `document.querySelector("iframe.mail").getAttribute("sandbox")`); got != "" {
		t.Errorf("the message's frame has sandbox=%q, want a sandbox with no permission", got)
	}
	message := u.path()

	// A campaign sent by another front end shows its progress live on
	// its open page.
	c := a.newCampaign("summer", campaign.RouteConfig{}, fiveRecipients, true)
	u.open("campaigns", "/campaigns")
	u.wantText("tbody", "summer")
	u.b.ClickAndWaitLoad(fmt.Sprintf(`tbody a[href="/campaigns/%d"]`, c.ID))
	u.watchLive(c, 5, "Finished: done", "done")

	// Done, the campaign's page offers no more start or cancel.
	if st := u.b.Navigate(fmt.Sprintf("%s/campaigns/%d", a.srv.URL, c.ID)); st != http.StatusOK {
		t.Fatalf("the campaign's page: status %d", st)
	}
	u.waitText("[data-field=live]", "Finished: done") // the stream's last event, at once
	shot := u.check("campaign")
	u.wantText(".status", "done")
	u.b.WaitNotPresent(`form[action$="/start"], form[action$="/cancel"]`)
	docsImage(t, shot, "campaign.png")

	u.open("doctor", "/doctor")
	u.wantText("h1", "Doctor")
	u.open("settings", "/settings")

	// The same pages on a phone.
	u.onPhone(func() {
		for _, p := range []struct{ name, path string }{
			{"campaigns-phone", "/campaigns"},
			{"compose-phone", "/campaigns/new"},
			{"lists-phone", "/lists"},
			{"list-phone", fmt.Sprintf("/lists/%d", l.ID)},
			{"campaign-phone", fmt.Sprintf("/campaigns/%d", c.ID)},
			{"recipients-phone", spring + "/recipients"},
			{"inbox-phone", "/inbox"},
			{"inbox-campaign-phone", strings.Replace(spring, "/campaigns/", "/inbox/", 1)},
			{"inbox-message-phone", message},
			{"doctor-phone", "/doctor"},
			{"settings-phone", "/settings"},
		} {
			u.open(p.name, p.path)
		}
	})
}

// TestBrowserSpanish is a visit by a person whose browser asks for
// Spanish: the pages come in Spanish from the first one, the live progress
// too, and the language menu switches to English and back, for this and
// the following pages.
func TestBrowserSpanish(t *testing.T) {
	a := newApp(t)
	u := newTour(t, a)
	u.b.SetAcceptLanguage("es-ES,es")

	u.open("setup-es", "/setup")
	u.wantLang("es")
	u.wantText("h1", "Primer inicio")
	u.wantText("main", "Cree la cuenta de administrador")
	u.wantText(`label[for="password2"]`, "Repita la contraseña")
	u.b.Fill("#email", adminEmail)
	u.b.Fill("#password", adminPassword)
	u.b.Fill("#password2", adminPassword)
	u.submit("campaigns-empty-es", "main button[type=submit]")
	u.wantText("h1", "Campañas")
	u.wantText("main", "Todavía no hay campañas")
	u.wantText("nav", "Bandeja")
	u.wantText("form.logout", "Cerrar sesión")

	c := a.newCampaign("primavera", campaign.RouteConfig{}, fiveRecipients, true)
	u.watchLive(c, 5, "Terminado: terminada", "terminada")
	u.wantText("#h-actions", "Acciones")
	u.wantText("main", "Registro de destinatarios")

	u.open("recipients-es", fmt.Sprintf("/campaigns/%d/recipients", c.ID))
	u.wantText("h1", "Destinatarios: primavera")
	u.wantText("tbody", "Entregados")
	u.newList("3 añadidos, 0 actualizados, 1 rechazados")
	u.open("compose-es", "/campaigns/new")
	u.wantText("h1", "Nueva campaña")
	u.wantText(`button[name=action][value=start]`, "Crear y enviar")
	u.open("inbox-es", "/inbox")
	u.wantText("h1", "Bandeja de prueba")
	u.open("doctor-es", "/doctor")
	u.wantText("h1", "Diagnóstico")

	// The menu wins over the browser's languages, on the following pages too.
	u.chooseLanguage("en")
	u.check("doctor-en")
	u.wantText("h1", "Doctor")
	u.open("campaigns-en", "/campaigns")
	u.wantLang("en")
	u.wantText("h1", "Campaigns")
	u.chooseLanguage("es")
	u.check("campaigns-es")
	u.wantText("h1", "Campañas")
	u.wantText("tbody", "terminada")
}

// signIn creates the administrator and signs in on the sign-in page.
func (u *tour) signIn() {
	u.t.Helper()
	if _, err := u.a.acc.CreateAdmin(context.Background(), adminEmail, adminPassword); err != nil {
		u.t.Fatal(err)
	}
	u.open("login", "/login")
	u.b.Fill("#email", adminEmail)
	u.b.Fill("#password", adminPassword)
	u.b.ClickAndWaitLoad("main button[type=submit]")
	if p := u.path(); p != "/campaigns" {
		u.t.Fatalf("after signing in the browser is on %s, want /campaigns", p)
	}
}

// TestBrowserTroubledCampaigns shows the pages of campaigns that went
// wrong: recipients a relay refused, listed by reason with what it means
// once the run ends (without reloading the page), sent again with the
// reason's button; and a campaign that paused itself, with the doctor's
// diagnosis and the suggested fix. Desktop and phone.
func TestBrowserTroubledCampaigns(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	srv := smtptest.Start(t, smtptest.Options{Faults: func(ev smtptest.Event) *smtptest.Fault {
		if ev.Step != "rcpt" {
			return nil
		}
		switch {
		case strings.HasPrefix(ev.Rcpt, "b@") && refuse.Load():
			return &smtptest.Fault{Code: 550, Enhanced: "5.7.1", Text: "message content rejected as spam"}
		case strings.HasPrefix(ev.Rcpt, "c@"):
			return &smtptest.Fault{Code: 550, Enhanced: "5.1.1", Text: "no such user here"}
		}
		return nil
	}})
	a := newApp(t)
	u := newTour(t, a)
	u.signIn()

	c := a.newCampaign("autumn", relayTo(srv), fiveRecipients, false)
	page := fmt.Sprintf("/campaigns/%d", c.ID)
	u.open("relay-pending", page)
	u.submit("relay-started", fmt.Sprintf(`form[action="%s/start"] button`, page))
	u.waitText("[data-field=live]", "Finished: done")
	// The reasons come in when the run ends.
	u.waitText("#h-failed", "Failed recipients by reason")
	u.wantText("[data-field=failed]", "2")
	u.wantText("[data-field=delivered]", "3")
	table := u.b.Text("section[aria-labelledby=h-failed] tbody")
	if strings.Count(table, "Send again") != 2 {
		t.Errorf("the failed reasons read %q, want two, each with its send-again button", table)
	}
	u.check("relay-failed")
	u.onPhone(func() { u.check("relay-failed-phone") })

	// One reason's recipients, then send them again once the relay takes them.
	u.b.ClickAndWaitLoad(`section[aria-labelledby=h-failed] tbody a[href*="class="]`)
	u.check("recipients-failed")
	if got := u.b.Text("tbody"); strings.Count(got, "@example.org") != 1 {
		t.Errorf("the log of one reason lists %q, want one recipient", got)
	}
	u.open("relay-done", page)
	refuse.Store(false)
	var spam string // the class of 5.7.1 "rejected as spam"
	for _, class := range browsertest.Eval[[]string](u.b, `[...document.querySelectorAll("input[name=class]")].map((i) => i.value)`) {
		if class != "recipient-unknown" {
			spam = class
		}
	}
	if spam == "" {
		t.Fatalf("no send-again button for the refusal as spam among %v", browsertest.Eval[[]string](u.b, `[...document.querySelectorAll("input[name=class]")].map((i) => i.value)`))
	}
	u.submit("relay-requeued", fmt.Sprintf(`form[action="%s/requeue"]:has(input[value=%q]) button`, page, spam))
	u.wantText(".flash", "sent again")
	u.waitText("[data-field=live]", "Finished: done")
	u.waitText("[data-field=delivered]", "4")
	u.check("relay-requeued-done")

	// A campaign that paused itself on a relay's wrong TLS mode.
	p := a.newCampaign("winter", campaign.RouteConfig{Relays: []string{"smtp://u@127.0.0.1:2465"}}, fiveRecipients, false)
	rep := &doctor.Report{Route: route.Relay, Findings: []doctor.Finding{
		{ID: "relay.banner", Subject: "127.0.0.1:2465", Severity: doctor.Fail, Code: "timeout", Evidence: []string{"no banner in 10s"}},
	}, Verdict: doctor.Verdict{ID: doctor.VerdictTLSModeMismatch, Suggest: "smtps://u@127.0.0.1:2465",
		Title:  map[string]string{"en": "TLS mode does not match the port", "es": "El modo TLS no coincide"},
		Advice: map[string]string{"en": "Use implicit TLS.", "es": "Use TLS implícito."}}}
	ctx := context.Background()
	if err := a.svc.Store().SetDiagnosis(ctx, p.ID, rep.JSON()); err != nil {
		t.Fatal(err)
	}
	a.pauseAsBreaker(p.ID)
	u.open("paused-diagnosis", fmt.Sprintf("/campaigns/%d", p.ID))
	u.wantText("#h-diag", "Why the campaign paused itself")
	u.wantText("main", "TLS mode does not match the port")
	u.wantText(fmt.Sprintf(`form[action="/campaigns/%d/fix"]`, p.ID), "smtps://u@127.0.0.1:2465")
	u.onPhone(func() { u.check("paused-diagnosis-phone") })
}
