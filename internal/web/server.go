// Package web is mailout's web app (mailout serve): server-rendered pages
// over the campaign service, for people who prefer a browser to the
// command line.
//
// Place in the flow: browser -> middleware (security headers, cross-origin
// protection, session, language) -> a page handler -> the campaign service
// (internal/campaign: Resume, Pause, Cancel, Requeue, Watch) or the doctor
// (internal/doctor) -> an html/template page, a server-sent event stream
// of progress, or a CSV/.eml download. Templates, the style sheet and the
// few scripts are embedded; nothing is loaded from elsewhere.
//
// Files by concern: server.go (Config, New, routes, rendering),
// middleware.go, auth.go (sign-in, first run), i18n.go (catalogues),
// runner.go (campaign runs in this process), campaigns.go, sse.go,
// doctor.go, inbox.go, lists.go (the lists pages), settings.go (the
// settings page and API tokens), mount.go (the JSON API and /metrics).
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"mailout/internal/audience"
	"mailout/internal/campaign"
	"mailout/internal/doctor"
	"mailout/internal/optin"
	"mailout/internal/recipient"
	"mailout/internal/secret"
	"mailout/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Accounts signs people in. Its method set is that of the accounts
// service (internal/account), which the server is given in production.
type Accounts interface {
	// HasAdmin reports whether the first user exists (else the set-up
	// page creates it).
	HasAdmin(ctx context.Context) (bool, error)
	CreateAdmin(ctx context.Context, email, password string) (*store.User, error)
	// Login returns the value of a new session cookie.
	Login(ctx context.Context, email, password, remote string) (cookieValue string, err error)
	Session(ctx context.Context, cookieValue string) (*store.User, error)
	Logout(ctx context.Context, cookieValue string) error
}

// AccountErrors are the accounts service's error values the pages tell
// apart (with errors.Is); a nil one is never matched. Any other error of
// Login reads "wrong email or password".
type AccountErrors struct {
	// RateLimited: too many failed sign-ins; try again later.
	RateLimited error
	// AdminExists: the first user was created meanwhile.
	AdminExists error
}

// Config is what the web app needs.
type Config struct {
	// Campaigns is the campaign service (required).
	Campaigns *campaign.Service
	// Accounts signs people in (required).
	Accounts      Accounts
	AccountErrors AccountErrors
	// Runner runs campaigns in this process; nil = a new one over
	// Campaigns, with Context.Background (serve makes its own, to stop the
	// runs on shutdown).
	Runner *Runner
	// Doctor adjusts the checks the doctor page runs (labs and tests:
	// ports, timeouts, dialer); nil = the doctor's defaults.
	Doctor func(*doctor.Config)
	// Discover adjusts "find my provider's settings" the same way.
	Discover func(*doctor.DiscoverConfig)
	// OneClick is serve's --public-url: campaigns made on the compose
	// page get one-click unsubscribe links under it (docs/unsubscribe.md).
	OneClick campaign.OneClick
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil = time.Now.
	Now func() time.Time

	// SecretKey opens the stored settings: it seals the relay passwords
	// of the settings page (without it the page says the key is missing)
	// and gives the compose page the relay accounts, identities and
	// profiles (without it: the sandbox and direct delivery only).
	SecretKey *secret.Key
	// FileLimits cap the message bodies and attachments of a campaign
	// written in the browser; zero fields take the command line's
	// defaults (campaign.DefaultMaxMessageBytes, DefaultMaxAttachmentBytes).
	FileLimits campaign.FileLimits
	// Audience is the lists service behind /lists; nil = a new one over
	// the campaign service's store.
	Audience *audience.Service
	// Import caps a CSV file uploaded on a list's page; the zero value
	// takes the command line's caps (DefaultImportLimits).
	Import ImportLimits
	// Tokens makes, lists and deletes API tokens on the settings page and
	// checks the bearer token of /metrics (account.Service satisfies it);
	// nil hides the tokens and leaves /metrics to signed-in users.
	Tokens      Tokens
	TokenErrors TokenErrors
	// API is served under /api/v1/ without the session check: it checks
	// its own bearer token. nil = not mounted.
	API http.Handler
	// Bounces reads the bounce mailbox of the settings; serve runs its
	// loop. nil = one without a loop (the settings page's "Fetch now"
	// still reads the mailbox).
	Bounces *BounceFetcher
	// Metrics is served at /metrics to a signed-in user or a request with
	// a valid API token (Authorization: Bearer). nil = not mounted.
	Metrics http.Handler
}

// Tokens are the accounts service's API token methods.
type Tokens interface {
	CreateToken(ctx context.Context, name string) (plaintext string, err error)
	Tokens(ctx context.Context) ([]store.APIToken, error)
	DeleteToken(ctx context.Context, name string) error
	CheckToken(ctx context.Context, plaintext string) (*store.APIToken, error)
}

// TokenErrors are the accounts service's token errors the settings page
// tells apart (with errors.Is); a nil one is never matched.
type TokenErrors struct {
	// BadName: the token name is refused.
	BadName error
	// NoToken: no token of that name.
	NoToken error
}

// ImportLimits cap a CSV upload.
type ImportLimits struct {
	// Body caps the uploaded file's bytes.
	Body int64
	// List caps its rows and fields, as the command line's --max-rows,
	// --max-row-bytes and --max-field-bytes.
	List recipient.Options
}

// Default caps of an upload: the command line's caps of a list file, and
// a file of a few hundred thousand rows.
const (
	DefaultMaxUploadBytes = 64 << 20
	DefaultMaxRows        = 10_000_000
	DefaultMaxRowBytes    = 1 << 20
	DefaultMaxFieldBytes  = 64 << 10
)

// DefaultImportLimits are the command line's caps of a list file.
func DefaultImportLimits() ImportLimits {
	return ImportLimits{Body: DefaultMaxUploadBytes,
		List: recipient.Options{MaxRows: DefaultMaxRows, MaxRecordBytes: DefaultMaxRowBytes, MaxFieldBytes: DefaultMaxFieldBytes}}
}

// ErrConfig is returned by New for a Config without a required field.
var ErrConfig = errors.New("web: incomplete configuration")

// server is the web app's state.
type server struct {
	cfg    Config
	pages  map[string]*template.Template
	runner *Runner
	log    *slog.Logger
	static http.Handler
	// previews are the compose page's HTML previews, in memory.
	previews previewStore
	// optin runs the lists' public subscription forms (optin.go), made
	// on first use.
	optin     *optin.Service
	optinOnce sync.Once
	// bounces reads the bounce mailbox (bounces.go).
	bounces     *BounceFetcher
	bouncesOnce sync.Once
}

// New returns the web app's handler: every page, the static assets,
// /healthz, behind the security middleware.
func New(cfg Config) (http.Handler, error) {
	if cfg.Campaigns == nil || cfg.Accounts == nil {
		return nil, fmt.Errorf("%w: Campaigns and Accounts are required", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Audience == nil {
		cfg.Audience = audience.New(cfg.Campaigns.Store())
	}
	d := DefaultImportLimits()
	if cfg.Import.Body <= 0 {
		cfg.Import.Body = d.Body
	}
	if cfg.Import.List.MaxRows <= 0 {
		cfg.Import.List.MaxRows = d.List.MaxRows
	}
	if cfg.Import.List.MaxRecordBytes <= 0 {
		cfg.Import.List.MaxRecordBytes = d.List.MaxRecordBytes
	}
	if cfg.Import.List.MaxFieldBytes <= 0 {
		cfg.Import.List.MaxFieldBytes = d.List.MaxFieldBytes
	}
	s := &server{cfg: cfg, log: cfg.Logger, runner: cfg.Runner}
	if s.runner == nil {
		s.runner = NewRunner(context.Background(), cfg.Campaigns, cfg.Logger)
	}
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	s.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return s.routes(), nil
}

// routes mounts every page. Patterns are Go 1.22 ServeMux patterns.
func (s *server) routes() http.Handler {
	open := http.NewServeMux()   // no session needed
	authed := http.NewServeMux() // every other page
	open.HandleFunc("GET /healthz", s.healthz)
	open.Handle("GET /static/", s.staticFiles())
	// The icon (favicon.svg, linked from the layout) for the browsers
	// that ask for /favicon.ico whatever the page links.
	open.Handle("GET /favicon.ico", http.RedirectHandler("/static/favicon.svg", http.StatusMovedPermanently))
	open.HandleFunc("GET /setup", s.setupPage)
	open.HandleFunc("POST /setup", s.setup)
	open.HandleFunc("GET /login", s.loginPage)
	open.HandleFunc("POST /login", s.login)
	open.HandleFunc("POST /lang", s.setLang)
	// BEGIN one-click unsubscribe (unsubscribe.go): public, no session.
	open.HandleFunc("GET /u/{token}", s.unsubscribePage)
	open.HandleFunc(unsubscribePostPattern, s.unsubscribe)
	// END one-click unsubscribe
	// Double opt-in (optin.go): the lists' public forms, public.
	open.HandleFunc("GET /s/{form}", s.subscribePage)
	open.HandleFunc("POST /s/{form}", s.subscribe)
	open.HandleFunc(optinJSONPattern, s.subscribeJSON)
	open.HandleFunc("OPTIONS /s/{form}/json", s.subscribePreflight)
	open.HandleFunc("GET /c/{token}", s.confirmPage)
	open.HandleFunc("POST /c/{token}", s.confirm)

	authed.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/campaigns", http.StatusSeeOther)
	})
	authed.HandleFunc("POST /logout", s.logout)
	authed.HandleFunc("GET /campaigns", s.campaignList)
	authed.HandleFunc("GET /campaigns/{id}", s.campaignPage)
	authed.HandleFunc("GET /campaigns/{id}/recipients", s.recipientsPage)
	authed.HandleFunc("GET /campaigns/{id}/export.csv", s.exportCSV)
	authed.HandleFunc("GET /campaigns/{id}/events", s.events)
	authed.HandleFunc("POST /campaigns/{id}/start", s.control(actionStart))
	authed.HandleFunc("POST /campaigns/{id}/resume", s.control(actionStart))
	authed.HandleFunc("POST /campaigns/{id}/pause", s.control(actionPause))
	authed.HandleFunc("POST /campaigns/{id}/cancel", s.control(actionCancel))
	authed.HandleFunc("POST /campaigns/{id}/requeue", s.requeue)
	authed.HandleFunc("POST /campaigns/{id}/fix", s.fix)
	authed.HandleFunc("GET /doctor", s.doctorPage)
	authed.HandleFunc("POST /doctor", s.doctorRun)
	// The doctor page's sender checks (sender.go).
	authed.HandleFunc("POST /doctor/sender", s.senderRun)
	authed.HandleFunc("POST /doctor/discover", s.discover)
	authed.HandleFunc("GET /inbox", s.inboxList)
	authed.HandleFunc("GET /inbox/{id}", s.inboxCampaign)
	authed.HandleFunc("GET /inbox/{id}/{delivery}", s.inboxMessage)
	authed.HandleFunc("GET /inbox/{id}/{delivery}/body", s.inboxBody)
	authed.HandleFunc("GET /inbox/{id}/{delivery}/message.eml", s.inboxEML)
	// The compose page: new campaign, its preview and test send.
	authed.HandleFunc("GET /campaigns/new", s.composePage)
	authed.HandleFunc("POST /campaigns/new", s.composeSubmit)
	authed.HandleFunc("POST /campaigns/new/preview", s.composePreviewFragment)
	authed.HandleFunc("GET /campaigns/new/preview/{token}", s.composeFrame)

	// Lists, settings and API tokens; the JSON API and /metrics.
	authed.HandleFunc("GET /lists", s.listsPage)
	authed.HandleFunc("POST /lists", s.createList)
	authed.HandleFunc("GET /lists/{id}", s.listPage)
	authed.HandleFunc("POST /lists/{id}/rename", s.renameList)
	authed.HandleFunc("GET /lists/{id}/delete", s.deleteListPage)
	authed.HandleFunc("POST /lists/{id}/delete", s.deleteList)
	authed.HandleFunc("GET /lists/{id}/export.csv", s.exportList)
	authed.HandleFunc("POST /lists/{id}/import", s.importList)
	authed.HandleFunc("POST /lists/{id}/subscribers", s.addSubscriber)
	authed.HandleFunc("GET /lists/{id}/subscribers/{sub}", s.subscriberPage)
	authed.HandleFunc("POST /lists/{id}/subscribers/{sub}", s.updateSubscriber)
	authed.HandleFunc("POST /lists/{id}/subscribers/{sub}/delete", s.deleteSubscriber)
	authed.HandleFunc("POST /lists/{id}/form", s.saveListForm)
	authed.HandleFunc("GET /lists/{id}/pending/{p}", s.pendingMessage)
	authed.HandleFunc("GET /lists/{id}/consents.csv", s.exportConsents)
	authed.HandleFunc("GET /settings", s.settingsPage)
	authed.HandleFunc("POST /settings/relays", s.saveRelay)
	authed.HandleFunc("POST /settings/relays/{n}/delete", s.deleteRelay)
	authed.HandleFunc("POST /settings/relays/{n}/move", s.moveRelay)
	authed.HandleFunc("POST /settings/direct", s.saveDirect)
	// The public address of the app (publicurl.go).
	authed.HandleFunc("POST /settings/public", s.savePublic)
	// The bounce mailbox (bounces.go).
	authed.HandleFunc("POST /settings/bounces", s.saveBounces)
	authed.HandleFunc("POST /settings/bounces/fetch", s.fetchBounces)
	authed.HandleFunc("POST /settings/profiles", s.saveProfile)
	authed.HandleFunc("POST /settings/profiles/{n}/delete", s.deleteProfile)
	authed.HandleFunc("POST /settings/identities", s.saveIdentity)
	authed.HandleFunc("POST /settings/identities/{n}/delete", s.deleteIdentity)
	authed.HandleFunc("POST /settings/tokens", s.createToken)
	authed.HandleFunc("POST /settings/tokens/delete", s.deleteToken)
	if s.cfg.API != nil {
		open.Handle("/api/v1/", s.cfg.API)
	}
	if s.cfg.Metrics != nil {
		open.Handle("GET /metrics", s.metricsGuard(s.cfg.Metrics))
	}

	open.Handle("/", s.requireSession(authed))
	return s.secure(s.language(open))
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *server) staticFiles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		s.static.ServeHTTP(w, r)
	})
}

// page is what every template gets: the request's language, the signed-in
// user, the page's own data.
type page struct {
	Lang  string
	User  *store.User
	Title string
	// Path is the request's path, for the language menu's return.
	Path string
	// Flash is a message key shown once above the page (after a redirect).
	Flash string
	// Error is a message key shown as an alert.
	Error string
	Data  any
	tr    catalogue
}

// T translates a message key in the page's language.
func (p *page) T(key string) string { return p.tr.text(key) }

// Tf translates a key and fills its %s/%d verbs.
func (p *page) Tf(key string, args ...any) string { return fmt.Sprintf(p.tr.text(key), args...) }

// render writes the named page with status.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name, titleKey string, data any, errKey string) {
	t := s.pages[name]
	if t == nil {
		s.log.Error("no such template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	lang := langOf(r)
	p := &page{Lang: lang, User: userOf(r), Path: r.URL.Path, Data: data, Error: errKey, tr: catalogues[lang]}
	p.Title = p.T(titleKey)
	if f := r.URL.Query().Get("done"); f != "" && catalogues[lang].has("flash."+f) {
		p.Flash = "flash." + f
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		pages[n[len("templates/"):len(n)-len(".html")]] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"percent": func(part, total int) int {
		if total <= 0 {
			return 0
		}
		return part * 100 / total
	},
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("2006-01-02 15:04")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"add": func(a, b int) int { return a + b },
	// diag hands the diagnosis partial its page (for T) and the report.
	"diag": func(p *page, d *diagnosisView) diagArgs { return diagArgs{P: p, D: d} },
	// fe hands the compose page's field-error partial its page and field.
	"fe": fieldErrOf,
}

type diagArgs struct {
	P *page
	D *diagnosisView
}

// idParam reads the {id} of the path.
func idParam(r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return id, err == nil && id > 0
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusNotFound, "error", "error.notfound", nil, "error.notfound")
}

func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		s.notFound(w, r)
		return
	}
	s.log.Error("request failed", "path", r.URL.Path, "err", err)
	s.render(w, r, http.StatusInternalServerError, "error", "error.internal", nil, "error.internal")
}
