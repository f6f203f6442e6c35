package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"mailout/internal/audience"
	"mailout/internal/campaign"
	"mailout/internal/outcome"
	"mailout/internal/render"
	"mailout/internal/route"
	"mailout/internal/setting"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// The compose page: a campaign made from a list, its message written in
// the browser, a live preview for one subscriber and a test send.

// composeForm is what the person typed, kept on every round trip.
type composeForm struct {
	ListID     int64
	Name       string
	From       string
	Subject    string
	Text       string
	HTML       string
	Route      string
	Relays     []string
	Profile    string
	Subscriber int64
	Search     string
	TestTo     string
	// SendAt is the "Send at" field (datetime-local: no zone; the
	// server's local zone applies); empty sends when started.
	SendAt string
	// Attached names the files of this request, which the browser cannot
	// be given back: the page asks for them again.
	Attached []string
}

// composeView is the compose page's data.
type composeView struct {
	Form        composeForm
	Lists       []store.List
	List        *store.List
	Columns     []string
	Identities  []setting.Identity
	Relays      []setting.RelayAccount
	Fallback    string
	Profiles    []string
	Subscribers []store.Subscriber
	// Errors maps a field name to a message key, ErrorText to a text
	// (a template error, already located).
	Errors    map[string]string
	ErrorText map[string]string
	MaxAttach string
	Preview   *composePreview
	Test      *composeTest
}

// Chosen reports whether the relay account name is ticked.
func (v *composeView) Chosen(name string) bool {
	for _, n := range v.Form.Relays {
		if n == name {
			return true
		}
	}
	return false
}

// fieldErr is what the fielderr partial shows for one field.
type fieldErr struct {
	P         *page
	Field     string
	Key, Text string
}

func fieldErrOf(p *page, field string) fieldErr {
	v, _ := p.Data.(*composeView)
	if v == nil {
		return fieldErr{P: p, Field: field}
	}
	return fieldErr{P: p, Field: field, Key: v.Errors[field], Text: v.ErrorText[field]}
}

// Err returns the message key of field's error, "" when there is none.
func (v *composeView) Err(field string) string { return v.Errors[field] }

// composePreview is the message rendered for one subscriber.
type composePreview struct {
	From, To, Subject string
	Text              string
	// HTML is the path of the frame's document, "" without an HTML part.
	HTML string
	// Error is a template error for that subscriber.
	Error string
}

// composeTest is the result of a test send.
type composeTest struct {
	To        string
	Delivered bool
	Sandbox   bool
	Class     outcome.Class
	Advice    string
	Reply     string
}

func (s *server) audience() *audience.Service { return audience.New(s.cfg.Campaigns.Store()) }

// appSettings are the stored settings: relay accounts, DNS, HELO,
// profiles, identities. Without a secret key none can be read.
func (s *server) appSettings(ctx context.Context) (*setting.Settings, error) {
	if s.cfg.SecretKey == nil {
		return &setting.Settings{}, nil
	}
	return setting.Load(ctx, s.cfg.Campaigns.Store(), s.cfg.SecretKey)
}

func (s *server) fileLimits() campaign.FileLimits {
	l := s.cfg.FileLimits
	if l.Message <= 0 {
		l.Message = campaign.DefaultMaxMessageBytes
	}
	if l.Attachments <= 0 {
		l.Attachments = campaign.DefaultMaxAttachmentBytes
	}
	return l
}

// composePage is the empty form: the first list, a name from it and
// today's date, the first identity, the sandbox on a first run.
func (s *server) composePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := composeForm{Profile: "normal", Route: string(route.Sandbox)}
	if id, err := strconv.ParseInt(r.URL.Query().Get("list"), 10, 64); err == nil {
		f.ListID = id
	}
	v, err := s.composeView(ctx, &f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if v.List != nil {
		f.Name = v.List.Name + " " + s.cfg.Now().Format("2006-01-02")
	}
	if len(v.Identities) > 0 {
		f.From = v.Identities[0].From
	}
	if cs, err := s.cfg.Campaigns.Store().Campaigns(ctx); err == nil && len(cs) > 0 && len(v.Relays) > 0 {
		// Not a first run: the first relay account, rather than the sandbox.
		f.Route, f.Relays = string(route.Relay), []string{v.Relays[0].Name}
	}
	v.Form = f
	s.render(w, r, http.StatusOK, "compose", "compose.title", v, "")
}

// composeView fills what the form offers; f.ListID becomes the chosen
// list (the first when none or an unknown one is named).
func (s *server) composeView(ctx context.Context, f *composeForm) (*composeView, error) {
	v := &composeView{Errors: map[string]string{}, ErrorText: map[string]string{},
		Profiles: throttle.Names(), MaxAttach: sizeText(s.fileLimits().Attachments)}
	lists, err := s.audience().All(ctx)
	if err != nil {
		return nil, err
	}
	v.Lists = lists
	for i := range lists {
		if lists[i].ID == f.ListID || (f.ListID == 0 && i == 0) {
			v.List = &lists[i]
		}
	}
	if v.List == nil && len(lists) > 0 {
		v.List = &lists[0]
	}
	if v.List != nil {
		f.ListID = v.List.ID
		v.Columns = v.List.Columns
		v.Subscribers, err = s.audience().Subscribers(ctx, v.List.ID, store.SubscriberFilter{Search: f.Search, Limit: 20})
		if err != nil {
			return nil, err
		}
	}
	st, err := s.appSettings(ctx)
	if err != nil {
		return nil, err
	}
	v.Identities, v.Relays, v.Fallback = st.Identities, st.Relays, st.FallbackRelay
	for _, p := range st.Profiles {
		v.Profiles = append(v.Profiles, p.Name)
	}
	return v, nil
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// errBadForm: the request is not a form this page can read.
var errBadForm = errors.New("unreadable form")

// readCompose reads the multipart (or URL-encoded) form; attachments
// over the cap are a field error, not a failure.
func (s *server) readCompose(w http.ResponseWriter, r *http.Request) (*composeForm, []store.Attachment, map[string]string, error) {
	lim := s.fileLimits()
	// Room for the two bodies and the attachments, so that one over the
	// cap is read and named rather than cut off.
	r.Body = http.MaxBytesReader(w, r.Body, 2*lim.Message+2*lim.Attachments+1<<20)
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		err = r.ParseMultipartForm(8 << 20)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", errBadForm, err)
	}
	g := r.PostFormValue
	f := &composeForm{Name: strings.TrimSpace(g("name")), From: oneLine(g("from")), Subject: oneLine(g("subject")),
		Text: strings.ReplaceAll(g("text"), "\r\n", "\n"), HTML: strings.ReplaceAll(g("html"), "\r\n", "\n"),
		Route: g("route"), Relays: r.PostForm["relay"], Profile: g("profile"), Search: strings.TrimSpace(g("search")),
		TestTo: strings.TrimSpace(g("test_to")), SendAt: strings.TrimSpace(g("send_at"))}
	f.ListID, _ = strconv.ParseInt(g("list"), 10, 64)
	f.Subscriber, _ = strconv.ParseInt(g("subscriber"), 10, 64)
	errs := map[string]string{}
	var atts []store.Attachment
	if r.MultipartForm != nil {
		left := lim.Attachments
		for _, fh := range r.MultipartForm.File["attachments"] {
			if fh.Filename == "" {
				continue
			}
			f.Attached = append(f.Attached, fh.Filename)
			if fh.Size > left {
				if errs["attachments"] == "" {
					errs["attachments"] = fh.Filename
				}
				continue
			}
			data, err := readPart(fh)
			if err != nil {
				return nil, nil, nil, err
			}
			left -= int64(len(data))
			atts = append(atts, store.Attachment{Name: fh.Filename, Data: data})
		}
	}
	for _, fld := range []struct{ name, v string }{{"text", f.Text}, {"html", f.HTML}} {
		if int64(len(fld.v)) > lim.Message {
			errs[fld.name] = "compose.err.toolong"
		}
	}
	return f, atts, errs, nil
}

func readPart(fh *multipart.FileHeader) ([]byte, error) {
	fr, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer fr.Close()
	return io.ReadAll(fr)
}

// oneLine keeps a header value on one line: a typed line break would
// start another header field.
func oneLine(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s))
}

// headerLines is the number of lines before the text body in the
// assembled template: From, Subject, the blank line.
const headerLines = 3

// message assembles the template in the form the command line reads: the
// header fields, a blank line, the text body (RFC 5322 §2.1).
func (f *composeForm) message(atts []store.Attachment) *store.Message {
	m := &store.Message{TemplateName: "message.txt", Attachments: atts,
		Template: []byte("From: " + f.From + "\nSubject: " + f.Subject + "\n\n" + f.Text)}
	if strings.TrimSpace(f.HTML) != "" {
		m.HTML, m.HTMLName = []byte(f.HTML), "message.html"
	}
	return m
}

// templateError puts a render error next to its field, with the line in
// that field.
func templateError(v *composeView, p *page, err error) bool {
	var re *render.Error
	if !errors.As(err, &re) {
		return false
	}
	switch {
	case re.File == "message.html":
		v.ErrorText["html"] = located(p, re.Line, re.Msg)
	case re.Line > 0 && re.Line < headerLines:
		field := "from"
		if re.Line == 2 {
			field = "subject"
		}
		v.ErrorText[field] = re.Msg
	case re.Line >= headerLines:
		v.ErrorText["text"] = located(p, re.Line-headerLines, re.Msg)
	default:
		v.ErrorText["text"] = re.Msg
	}
	return true
}

func located(p *page, line int, msg string) string {
	if line <= 0 {
		return msg
	}
	return p.Tf("compose.err.line", line, msg)
}

// composeAction is what the form's submit button asks for.
type composeAction string

const (
	actPreview composeAction = "preview"
	actTest    composeAction = "test"
	actCreate  composeAction = "create"
	actStart   composeAction = "start"
)

// composeSubmit handles every button of the form: Preview and Send test
// show the page again with their result; Create and Create and start
// store the campaign and go to its page.
func (s *server) composeSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, atts, ferrs, err := s.readCompose(w, r)
	if err != nil {
		s.composeTooLarge(w, r, err)
		return
	}
	act := composeAction(r.PostFormValue("action"))
	v, err := s.composeView(ctx, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.Form = *f
	for k, e := range ferrs {
		if k == "attachments" {
			v.ErrorText[k] = s.page(r).Tf("compose.err.attachment", e, v.MaxAttach)
			continue
		}
		v.Errors[k] = e
	}
	status := http.StatusOK
	switch act {
	case actTest:
		status = s.composeTest(ctx, r, v, atts)
	case actCreate, actStart:
		if c := s.composeCreate(ctx, r, v, atts); c != nil {
			if act == actStart && c.StartAt.IsZero() {
				// A scheduled campaign waits: the runner starts it
				// when its time comes (WatchScheduled).
				if err := s.runner.Start(ctx, c.ID); err != nil {
					s.log.Error("start a new campaign", "campaign", c.Name, "err", err)
					http.Redirect(w, r, fmt.Sprintf("/campaigns/%d", c.ID), http.StatusSeeOther)
					return
				}
				http.Redirect(w, r, fmt.Sprintf("/campaigns/%d?done=started", c.ID), http.StatusSeeOther)
				return
			}
			http.Redirect(w, r, fmt.Sprintf("/campaigns/%d", c.ID), http.StatusSeeOther)
			return
		}
		status = http.StatusUnprocessableEntity
	default:
		s.composePreview(ctx, r, v)
	}
	if status == http.StatusOK && (len(v.Errors) > 0 || len(v.ErrorText) > 0) {
		status = http.StatusUnprocessableEntity
	}
	s.render(w, r, status, "compose", "compose.title", v, "")
}

// composeTooLarge answers a request the form reader refused.
func (s *server) composeTooLarge(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		s.render(w, r, http.StatusRequestEntityTooLarge, "error", "compose.title", nil, "compose.err.toolarge")
		return
	}
	s.render(w, r, http.StatusBadRequest, "error", "compose.title", nil, "compose.err.badform")
}

// page is the page a handler renders, for its translations.
func (s *server) page(r *http.Request) *page {
	lang := langOf(r)
	return &page{Lang: lang, tr: catalogues[lang]}
}

// draft checks the message (and, with the route, the route) of the form.
// A sandbox route is enough for a preview.
func (s *server) draft(ctx context.Context, r *http.Request, v *composeView, atts []store.Attachment, withRoute bool) (*campaign.Draft, *campaign.Routing) {
	f := &v.Form
	p := s.page(r)
	rc, env := campaign.RouteConfig{Route: string(route.Sandbox)}, campaign.Env{}
	prof, _ := throttle.Lookup("normal")
	var startAt time.Time
	if withRoute {
		st, err := s.appSettings(ctx)
		if err != nil {
			v.Errors["route"] = "error.internal"
			return nil, nil
		}
		if f.Route == string(route.Relay) && len(f.Relays) == 0 {
			v.Errors["route"] = "compose.err.norelay"
			return nil, nil
		}
		// Relay accounts go in the settings' order: the first is used,
		// the next ones take over when it fails.
		var names []string
		for _, ra := range st.Relays {
			for _, n := range f.Relays {
				if n == ra.Name {
					names = append(names, n)
				}
			}
		}
		switch f.Route {
		case string(route.Sandbox), string(route.Relay):
		case string(route.Direct):
			names = nil // the settings' fallback relay, when there is one
		default:
			v.Errors["route"] = "compose.err.route"
			return nil, nil
		}
		if rc, env, err = st.Route(f.Route, names); err != nil {
			v.Errors["route"] = "compose.err.route"
			return nil, nil
		}
		if prof, err = st.Profile(f.Profile); err != nil {
			v.Errors["profile"] = "compose.err.profile"
			return nil, nil
		}
		if f.SendAt != "" {
			if startAt, err = campaign.ParseStartAt(f.SendAt, s.cfg.Now()); err != nil {
				v.Errors["send_at"] = "compose.err.sendat"
				return nil, nil
			}
		}
	}
	rt, err := rc.Check(route.Sandbox, env)
	if err != nil {
		// The route's own error may quote a URL: a key only.
		s.log.Warn("compose: route refused", "err", err)
		v.Errors["route"] = "compose.err.route"
		return nil, nil
	}
	if f.From == "" {
		v.Errors["from"] = "compose.err.from"
		return nil, nil
	}
	d, err := campaign.NewCampaign{Name: f.Name, Message: f.message(atts), Routing: rt, Profile: prof,
		MaxAge: 72 * time.Hour, RetryMin: 5 * time.Minute, OneClick: s.oneClick(ctx), StartAt: startAt}.Check(campaign.Env{})
	if err != nil {
		if !templateError(v, p, err) {
			v.ErrorText["text"] = err.Error()
		}
		return nil, nil
	}
	return d, rt
}

// subscriber is the subscriber the preview and the test are for: the
// chosen one, else the first shown.
func (s *server) subscriber(ctx context.Context, v *composeView) *store.Subscriber {
	if v.List == nil {
		return nil
	}
	if v.Form.Subscriber > 0 {
		if sub, err := s.audience().Subscriber(ctx, v.List.ID, v.Form.Subscriber); err == nil {
			return sub
		}
	}
	if len(v.Subscribers) > 0 {
		v.Form.Subscriber = v.Subscribers[0].ID
		return &v.Subscribers[0]
	}
	return nil
}

// composePreview renders the message for the chosen subscriber. Nothing
// is stored: the HTML part waits in memory for its frame.
func (s *server) composePreview(ctx context.Context, r *http.Request, v *composeView) {
	if v.List == nil {
		return
	}
	sub := s.subscriber(ctx, v)
	if sub == nil {
		return
	}
	d, _ := s.draft(ctx, r, v, nil, false)
	if d == nil {
		return
	}
	m, err := d.Render(render.Recipient{Email: sub.Email, Fields: sub.Fields})
	if err != nil {
		// A merge field this subscriber lacks: said in the preview, with
		// its line, next to the field it is in.
		pv := &composePreview{Error: err.Error()}
		if templateError(v, s.page(r), err) {
			pv.Error = ""
		}
		v.Preview = pv
		return
	}
	v.Preview = s.previewOf(r, m)
}

// previewOf shows a rendered message: headers and text as text, the HTML
// part through previews (served by composeFrame).
func (s *server) previewOf(r *http.Request, data []byte) *composePreview {
	pv := &composePreview{}
	for _, h := range headersOf(data) {
		switch strings.ToLower(h.Name) {
		case "from":
			pv.From = h.Value
		case "to":
			pv.To = h.Value
		case "subject":
			pv.Subject = h.Value
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return pv
	}
	html, text := bodies(msg)
	pv.Text = string(text)
	if html != nil {
		pv.HTML = "/campaigns/new/preview/" + s.previews.put(userOf(r), html)
	}
	return pv
}

// composePreviewFragment is the preview alone, for compose.js: the form
// posted as it is typed, the preview section returned.
func (s *server) composePreviewFragment(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, _, _, err := s.readCompose(w, r)
	if err != nil {
		s.composeTooLarge(w, r, err)
		return
	}
	v, err := s.composeView(ctx, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.Form = *f
	s.composePreview(ctx, r, v)
	t := s.pages["compose"]
	lang := langOf(r)
	p := &page{Lang: lang, User: userOf(r), Path: r.URL.Path, Data: v, tr: catalogues[lang]}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "preview", p); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = buf.WriteTo(w)
}

// composeFrame serves a preview's HTML part, as the inbox serves a kept
// message's: its own CSP, in a sandboxed frame.
func (s *server) composeFrame(w http.ResponseWriter, r *http.Request) {
	html, ok := s.previews.get(userOf(r), r.PathValue("token"))
	if !ok {
		s.notFound(w, r)
		return
	}
	writeUntrustedHTML(w, html)
}

// composeTest sends the message for the chosen subscriber to the typed
// address through the chosen route.
func (s *server) composeTest(ctx context.Context, r *http.Request, v *composeView, atts []store.Attachment) int {
	f := &v.Form
	if f.TestTo == "" {
		v.Errors["test_to"] = "compose.err.testto"
		return http.StatusUnprocessableEntity
	}
	sub := s.subscriber(ctx, v)
	if sub == nil {
		v.Errors["list"] = "compose.err.nolist"
		return http.StatusUnprocessableEntity
	}
	d, rt := s.draft(ctx, r, v, atts, true)
	if d == nil {
		return http.StatusUnprocessableEntity
	}
	res, err := s.cfg.Campaigns.TestSend(ctx, d, render.Recipient{Email: sub.Email, Fields: sub.Fields}, f.TestTo)
	var ie *campaign.InputError
	switch {
	case errors.As(err, &ie):
		v.Errors["test_to"] = "compose.err.testto"
		return http.StatusUnprocessableEntity
	case err != nil:
		if !templateError(v, s.page(r), err) {
			s.log.Warn("compose: test send", "err", err)
			v.Errors["test_to"] = "compose.err.testfailed"
		}
		return http.StatusUnprocessableEntity
	}
	t := &composeTest{To: f.TestTo, Sandbox: res.Sandbox}
	if res.Sandbox {
		v.Preview = s.previewOf(r, res.Data)
	} else {
		t.Delivered, t.Class = res.IsDelivered(), res.Class
		if !t.Delivered {
			t.Advice = outcome.Advice(res.Class, rt.Route(), langOf(r))
			t.Reply = strings.TrimSpace(fmt.Sprintf("%d %s %s", res.Code, res.Enhanced, res.Text))
			if res.Code == 0 {
				t.Reply = res.Text
			}
		}
	}
	v.Test = t
	return http.StatusOK
}

// composeCreate stores the campaign from the list; nil when the form
// has errors, which v then holds.
func (s *server) composeCreate(ctx context.Context, r *http.Request, v *composeView, atts []store.Attachment) *store.Campaign {
	f := &v.Form
	if v.List == nil {
		v.Errors["list"] = "compose.err.nolist"
		return nil
	}
	if f.Name == "" {
		v.Errors["name"] = "compose.err.name"
	}
	if len(v.Errors) > 0 || len(v.ErrorText) > 0 {
		return nil
	}
	d, _ := s.draft(ctx, r, v, atts, true)
	if d == nil {
		return nil
	}
	c, _, err := s.cfg.Campaigns.Create(ctx, d, s.audience().Rows(ctx, v.List.ID), nil)
	var re *campaign.RenderError
	switch {
	case err == nil:
		return c
	case errors.Is(err, store.ErrExists):
		v.Errors["name"] = "compose.err.exists"
	case errors.Is(err, campaign.ErrNoRecipients):
		v.Errors["list"] = "compose.err.norecipients"
	case errors.As(err, &re):
		if !templateError(v, s.page(r), re.Err) {
			v.ErrorText["text"] = re.Error()
		}
	default:
		s.log.Error("compose: create", "err", err)
		v.Errors["name"] = "error.internal"
	}
	return nil
}

// previewStore keeps the HTML parts of recent previews in memory, for
// their frames: never in the database, a few minutes at most, each
// readable only by the user who asked for it.
type previewStore struct {
	mu      sync.Mutex
	entries map[string]previewEntry
	order   []string
}

type previewEntry struct {
	user int64
	html []byte
	at   time.Time
}

const (
	previewsKept = 64
	previewTTL   = 10 * time.Minute
)

func (p *previewStore) put(u *store.User, html []byte) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries == nil {
		p.entries = map[string]previewEntry{}
	}
	if len(p.order) >= previewsKept {
		delete(p.entries, p.order[0])
		p.order = p.order[1:]
	}
	p.entries[tok] = previewEntry{user: userID(u), html: html, at: time.Now()}
	p.order = append(p.order, tok)
	return tok
}

func (p *previewStore) get(u *store.User, tok string) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[tok]
	if !ok || e.user != userID(u) || time.Since(e.at) > previewTTL {
		return nil, false
	}
	return e.html, true
}

func userID(u *store.User) int64 {
	if u == nil {
		return 0
	}
	return u.ID
}
