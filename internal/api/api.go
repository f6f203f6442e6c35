// Package api is mailout's JSON API under /api/v1/: the campaign service
// (create, start, pause, resume, cancel, progress, recipients, requeue) and
// the lists, for scripts and other programs. The web app mounts it beside
// its pages; it serves nothing outside /api/v1/.
//
// Every request needs an API token (Authorization: Bearer TOKEN); every
// error is JSON, {"error": {"code": "...", "message": "..."}}, with a code
// that does not change between versions. api/openapi.yaml describes every
// route, and a test holds the two together.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"

	"mailout/internal/account"
	"mailout/internal/audience"
	"mailout/internal/campaign"
	"mailout/internal/recipient"
	"mailout/internal/secret"
	"mailout/internal/store"
)

// Prefix is the path every route of the API starts with.
const Prefix = "/api/v1/"

// TokenChecker checks the plaintext of an API token (account.Service
// satisfies it). Any error refuses the request.
type TokenChecker interface {
	CheckToken(ctx context.Context, plaintext string) (*store.APIToken, error)
}

// The accounts service is the API's token checker.
var _ TokenChecker = (*account.Service)(nil)

// Limits cap what a request may bring. The zero value takes the command
// line's caps (DefaultLimits).
type Limits struct {
	// Body caps a request body: the JSON of a new campaign (its
	// recipients_csv included), or a CSV file to import.
	Body int64
	// Message caps the message template, and the HTML template, each:
	// the command line's --max-message-bytes.
	Message int64
	// List caps the rows and fields of a recipient list: the command
	// line's --max-rows, --max-row-bytes and --max-field-bytes.
	List recipient.Options
}

// Default caps: a list's rows and fields and a message as the command line
// takes them by default; a body holds a CSV of a few hundred thousand rows.
const (
	DefaultMaxBodyBytes  = 64 << 20
	DefaultMaxRows       = 10_000_000
	DefaultMaxRowBytes   = 1 << 20
	DefaultMaxFieldBytes = 64 << 10
)

// DefaultLimits are the caps of the command line.
func DefaultLimits() Limits {
	return Limits{Body: DefaultMaxBodyBytes, Message: campaign.DefaultMaxMessageBytes,
		List: recipient.Options{MaxRows: DefaultMaxRows, MaxRecordBytes: DefaultMaxRowBytes, MaxFieldBytes: DefaultMaxFieldBytes}}
}

// Config is what the API serves.
type Config struct {
	Campaigns *campaign.Service
	// Lists is the lists service (over the same store as Campaigns): the
	// list routes and the recipients of a campaign made from a list. nil
	// answers the list routes 501 not-implemented.
	Lists *audience.Service
	// Tokens checks API tokens: the accounts service.
	Tokens TokenChecker
	// Settings and SecretKey are where the app's settings (internal/setting)
	// are kept and the key that seals their relay passwords. With them a
	// campaign's route may name a stored relay account (route.account,
	// route.fallback_account): the campaign stores the account's name,
	// and its password is read from the sealed settings at creation and
	// at every start, in a later process too. nil Settings = the store
	// of Campaigns; nil SecretKey answers stored accounts 501.
	Settings  store.Accounts
	SecretKey *secret.Key
	Limits    Limits
	// Context bounds the runs that start and resume begin: when it is
	// cancelled they finish the messages in flight and end as
	// interrupted. nil = context.Background().
	Context context.Context
	// Runs, when set, counts the runs going on, so that a server can wait
	// for them on shutdown.
	Runs *sync.WaitGroup
	// Fleet: the campaigns are sent by the workers of a fleet (a
	// PostgreSQL database), never in this process: start stores the
	// campaign as running for them (campaign.Service.Release).
	Fleet bool
	// Logger; nil discards.
	Logger *slog.Logger
}

// server is the API's state between requests.
type server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	mu sync.Mutex
	// running are the campaigns whose run was started here and goes on.
	running map[int64]bool
	// relays are the relay accounts of campaigns created here with a
	// password: the password is never stored, so a run in this process
	// takes it from memory, and after a restart the campaign needs it
	// again.
	relays map[int64]*campaign.Relays
}

// New returns the API's handler. It serves only paths under /api/v1/.
func New(cfg Config) http.Handler {
	if cfg.Limits.Body == 0 {
		cfg.Limits.Body = DefaultMaxBodyBytes
	}
	if cfg.Limits.Message == 0 {
		cfg.Limits.Message = campaign.DefaultMaxMessageBytes
	}
	if cfg.Limits.List == (recipient.Options{}) {
		cfg.Limits.List = DefaultLimits().List
	}
	if cfg.Context == nil {
		cfg.Context = context.Background()
	}
	s := &server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(),
		running: map[int64]bool{}, relays: map[int64]*campaign.Relays{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, r := range s.routes() {
		s.mux.HandleFunc(r.pattern, r.handler)
	}
	s.mux.HandleFunc(Prefix, s.notFound)
	return s.auth(s.mux)
}

// Routes are the API's routes as the server serves them: "METHOD /path"
// patterns of net/http's ServeMux.
func Routes() []string {
	var out []string
	for _, r := range (&server{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

type routeDef struct {
	pattern string
	handler http.HandlerFunc
}

func (s *server) routes() []routeDef {
	return []routeDef{
		{"POST /api/v1/campaigns", s.createCampaign},
		{"GET /api/v1/campaigns", s.listCampaigns},
		{"GET /api/v1/campaigns/{id}", s.getCampaign},
		{"POST /api/v1/campaigns/{id}/start", s.startCampaign},
		{"POST /api/v1/campaigns/{id}/resume", s.startCampaign},
		{"POST /api/v1/campaigns/{id}/pause", s.pauseCampaign},
		{"POST /api/v1/campaigns/{id}/cancel", s.cancelCampaign},
		{"GET /api/v1/campaigns/{id}/recipients", s.listRecipients},
		{"POST /api/v1/campaigns/{id}/requeue", s.requeue},
		{"POST /api/v1/lists", s.createList},
		{"GET /api/v1/lists", s.listLists},
		{"GET /api/v1/lists/{id}", s.getList},
		{"POST /api/v1/lists/{id}/import", s.importList},
		{"DELETE /api/v1/lists/{id}", s.deleteList},
		{"GET /api/v1/lists/{id}/subscribers", s.listSubscribers},
		{"GET /api/v1/lists/{id}/export", s.exportList},
	}
}

// auth lets through only requests with a valid API token, whatever their
// path: without a token nothing, not even which routes exist, is answered.
func (s *server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, Prefix) {
			writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "not an API path"})
			return
		}
		// RFC 6750 §2.1: the token goes as "Bearer" credentials in the
		// Authorization header (the scheme is case-insensitive, RFC 7235 §2.1).
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || s.cfg.Tokens == nil {
			unauthorized(w, "an API token is required: send Authorization: Bearer TOKEN (create one with mailout token create)", "")
			return
		}
		if _, err := s.cfg.Tokens.CheckToken(r.Context(), token); err != nil {
			// The token itself is never logged.
			s.log.Info("API request refused: token not valid", "remote", r.RemoteAddr, "err", err)
			unauthorized(w, "the API token is not valid", "invalid_token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// unauthorized answers 401 with the challenge RFC 6750 §3 asks for.
func unauthorized(w http.ResponseWriter, msg, bearerErr string) {
	challenge := `Bearer realm="mailout"`
	if bearerErr != "" {
		challenge += `, error="` + bearerErr + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: msg})
}

// notFound answers a path no route serves, or a method a route does not
// take (405 with Allow, RFC 9110 §15.5.6).
func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != Prefix && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
			Message: fmt.Sprintf("%s is not served on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
		return
	}
	writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no route " + r.URL.Path})
}

// Stable error codes: a client tells errors apart by them, never by the
// message.
const (
	CodeBadRequest           = "bad-request"
	CodeUnauthorized         = "unauthorized"
	CodeNotFound             = "not-found"
	CodeMethodNotAllowed     = "method-not-allowed"
	CodeConflict             = "conflict"
	CodeTooLarge             = "too-large"
	CodeUnsupportedMediaType = "unsupported-media-type"
	CodeNotImplemented       = "not-implemented"
	CodeInternal             = "internal"
)

// Error is an API error as it is sent.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the request field at fault, when there is one.
	Field string `json:"field,omitempty"`
	// Rejected lists the rows of a list that were refused, when the
	// whole list was.
	Rejected []RejectedRow `json:"rejected,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// RejectedRow is a row of a CSV list that was not imported.
type RejectedRow struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, struct {
		Error *Error `json:"error"`
	}{e})
}

// fail answers err: an *Error as it is, anything else as a 500 whose
// detail goes to the log only.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if errors.As(err, &e) {
		writeError(w, e)
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such " + resource(r)})
		return
	}
	s.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error; see the server's log"})
}

func resource(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, Prefix+"lists") {
		return "list"
	}
	return "campaign"
}

func badRequest(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: fmt.Sprintf(format, args...)}
}

// tooLarge names the cap that was hit, as the command line does.
func tooLarge(what string, limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
		Message: fmt.Sprintf("%s is over the cap of %s (%d bytes)", what, sizeText(limit), limit)}
}

// requireType refuses a body whose media type is not want.
func requireType(r *http.Request, want string) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != want {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType,
			Message: fmt.Sprintf("send the body as %s (Content-Type: %q)", want, r.Header.Get("Content-Type"))}
	}
	return nil
}

// decode reads a JSON body of at most the body cap into v; unknown fields
// are refused, so a misspelt field is not silently ignored.
func (s *server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if err := requireType(r, "application/json"); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.Limits.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge("the request body", mbe.Limit)
		}
		return badRequest("", "the body is not the JSON expected: %v", err)
	}
	if dec.More() {
		return badRequest("", "the body holds more than one JSON value")
	}
	return nil
}

// sizeText writes n bytes for a person: "64 MiB", "1 MiB", "700 KiB".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
