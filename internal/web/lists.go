package web

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"mailout/internal/addr"
	"mailout/internal/audience"
	"mailout/internal/recipient"
	"mailout/internal/store"
)

// subscribersPage is how many subscribers a list's page shows at a time.
const subscribersPage = 50

type listsView struct {
	Lists []store.List
	Name  string // the create form's value after an error
}

func (s *server) listsPage(w http.ResponseWriter, r *http.Request) {
	s.renderLists(w, r, http.StatusOK, "", "")
}

func (s *server) renderLists(w http.ResponseWriter, r *http.Request, status int, name, errKey string) {
	ls, err := s.cfg.Audience.All(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, status, "lists", "lists.title", listsView{Lists: ls, Name: name}, errKey)
}

func (s *server) createList(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("name")
	l, err := s.cfg.Audience.Create(r.Context(), name)
	if status, key := listNameError(err); key != "" {
		s.renderLists(w, r, status, name, key)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/lists/"+strconv.FormatInt(l.ID, 10)+"?done=listcreated", http.StatusSeeOther)
}

// listNameError maps a refused list name to its status and message key.
func listNameError(err error) (int, string) {
	var ie *audience.InvalidError
	switch {
	case errors.As(err, &ie):
		return http.StatusUnprocessableEntity, "lists.badname"
	case errors.Is(err, store.ErrExists):
		return http.StatusConflict, "lists.exists"
	}
	return 0, ""
}

// subscriberView is one row of a list's table: the fields in the list's
// column order.
type subscriberView struct {
	ID     int64
	Email  string
	Fields []string
	Source string
}

type suppressedView struct {
	Email, Reason, Source string
	At                    time.Time
}

type listView struct {
	List    *store.List
	Columns []string // the merge-field columns, without the address column
	Subs    []subscriberView
	Q       string
	After   int64
	Next    int64 // the AfterID of the next page, 0 when this is the last
	// Suppressed are the list's addresses a campaign will not send to.
	Suppressed []suppressedView
	// Forms' values after an error.
	Name, Email string
	FieldValues map[string]string
	// Import is the result of a CSV import, shown on its own page.
	Import     *audience.ImportResult
	FileError  string
	MaxUpload  string
	FieldError string
	// TooLarge: the upload was over the cap, which the page names.
	TooLarge bool
	// OptIn is the public subscription form's section.
	OptIn *listFormView
}

// fieldColumns are the list's merge-field columns, without its address
// column.
func fieldColumns(l *store.List) []string {
	var out []string
	for _, c := range l.Columns {
		if !recipient.IsEmailColumn(c) {
			out = append(out, c)
		}
	}
	return out
}

// loadList reads the list of the path's {id}, or answers 404.
func (s *server) loadList(w http.ResponseWriter, r *http.Request) *store.List {
	id, ok := idParam(r, "id")
	if !ok {
		s.notFound(w, r)
		return nil
	}
	l, err := s.cfg.Audience.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return nil
	}
	return l
}

func (s *server) listPage(w http.ResponseWriter, r *http.Request) {
	l := s.loadList(w, r)
	if l == nil {
		return
	}
	s.renderList(w, r, http.StatusOK, l, &listView{}, "")
}

// renderList fills v with the page of subscribers the query asks for and
// the list's suppressed addresses, and renders the list's page.
func (s *server) renderList(w http.ResponseWriter, r *http.Request, status int, l *store.List, v *listView, errKey string) {
	ctx := r.Context()
	v.List, v.Columns = l, fieldColumns(l)
	v.MaxUpload = byteSizeText(s.cfg.Import.Body)
	v.Q = strings.TrimSpace(r.URL.Query().Get("q"))
	v.After, _ = strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	subs, err := s.cfg.Audience.Subscribers(ctx, l.ID, store.SubscriberFilter{Search: v.Q, AfterID: v.After, Limit: subscribersPage + 1})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(subs) > subscribersPage {
		subs = subs[:subscribersPage]
		v.Next = subs[len(subs)-1].ID
	}
	for _, sub := range subs {
		row := subscriberView{ID: sub.ID, Email: sub.Email, Source: sub.Source}
		for _, c := range v.Columns {
			row.Fields = append(row.Fields, sub.Fields[c])
		}
		v.Subs = append(v.Subs, row)
	}
	err = s.cfg.Audience.Suppressed(ctx, l.ID, func(sub *store.Subscriber, e *store.Suppression) error {
		v.Suppressed = append(v.Suppressed, suppressedView{Email: sub.Email, Reason: e.Reason, Source: e.Source, At: e.At})
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if v.OptIn == nil {
		if v.OptIn, err = s.listForm(ctx, r, l, nil); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.render(w, r, status, "list", "list.title", v, errKey)
}

func (s *server) renameList(w http.ResponseWriter, r *http.Request) {
	l := s.loadList(w, r)
	if l == nil {
		return
	}
	name := r.PostFormValue("name")
	err := s.cfg.Audience.Rename(r.Context(), l.ID, name)
	if status, key := listNameError(err); key != "" {
		s.renderList(w, r, status, l, &listView{Name: name}, key)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, listURL(l.ID)+"?done=listrenamed", http.StatusSeeOther)
}

func listURL(id int64) string { return "/lists/" + strconv.FormatInt(id, 10) }

// deleteListPage is the confirmation step before a list is deleted.
func (s *server) deleteListPage(w http.ResponseWriter, r *http.Request) {
	l := s.loadList(w, r)
	if l == nil {
		return
	}
	s.render(w, r, http.StatusOK, "list_delete", "list.delete", &listView{List: l}, "")
}

func (s *server) deleteList(w http.ResponseWriter, r *http.Request) {
	l := s.loadList(w, r)
	if l == nil {
		return
	}
	if err := s.cfg.Audience.Delete(r.Context(), l.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/lists?done=listdeleted", http.StatusSeeOther)
}

func (s *server) exportList(w http.ResponseWriter, r *http.Request) {
	l := s.loadList(w, r)
	if l == nil {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="list-%d.csv"`, l.ID))
	if err := s.cfg.Audience.Export(r.Context(), l.ID, w, false); err != nil {
		// The header is sent: the download ends short.
		s.log.Error("export list", "list", l.ID, "err", err)
	}
}

// errUploadTooLarge is an upload over ImportLimits.Body.
var errUploadTooLarge = errors.New("upload over the cap")

// importList imports the CSV file of a multipart upload into the list,
// under the command line's caps: a file over the size cap is refused
// naming it; bad rows are listed with their line and reason and the rest
// are imported; a file-level error imports nothing and says why.
func (s *server) importList(w http.ResponseWriter, r *http.Request) {
	l := s.loadList(w, r)
	if l == nil {
		return
	}
	v := &listView{}
	f, name, err := s.spoolUpload(w, r)
	if f != nil {
		defer os.Remove(f.Name())
		defer f.Close()
	}
	switch {
	case errors.Is(err, errUploadTooLarge):
		v.TooLarge = true
		s.renderList(w, r, http.StatusRequestEntityTooLarge, l, v, "list.toolarge")
		return
	case errors.Is(err, http.ErrMissingFile):
		s.renderList(w, r, http.StatusUnprocessableEntity, l, v, "list.nofile")
		return
	case err != nil:
		s.log.Warn("list upload", "list", l.ID, "err", err)
		s.renderList(w, r, http.StatusBadRequest, l, v, "list.badupload")
		return
	}
	res, err := s.cfg.Audience.Import(r.Context(), l.ID, f, "import:"+name, s.cfg.Import.List)
	var fe *recipient.FileError
	if errors.As(err, &fe) {
		v.FileError = fe.Reason
		if fe.Line > 0 {
			v.FileError = fmt.Sprintf("%d: %s", fe.Line, fe.Reason)
		}
		s.render(w, r, http.StatusUnprocessableEntity, "list_import", "list.importresult", v.with(l), "list.fileerror")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.Import = res
	s.render(w, r, http.StatusOK, "list_import", "list.importresult", v.with(l), "")
}

func (v *listView) with(l *store.List) *listView {
	v.List = l
	return v
}

// spoolUpload copies the "file" part of a multipart form to a temporary
// file, reading no more than the cap: errUploadTooLarge over it.
func (s *server) spoolUpload(w http.ResponseWriter, r *http.Request) (*os.File, string, error) {
	max := s.cfg.Import.Body
	// The form's other parts and its boundaries are small.
	r.Body = http.MaxBytesReader(w, r.Body, max+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, "", err
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, "", http.ErrMissingFile
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", errUploadTooLarge
		}
		if err != nil {
			return nil, "", err
		}
		if p.FormName() != "file" {
			continue
		}
		return spoolPart(p, max)
	}
}

func spoolPart(p *multipart.Part, max int64) (*os.File, string, error) {
	f, err := os.CreateTemp("", "mailout-upload-*.csv")
	if err != nil {
		return nil, "", err
	}
	n, err := io.Copy(f, io.LimitReader(p, max+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || n > max:
		err = errUploadTooLarge
	case err == nil && n == 0 && p.FileName() == "":
		err = http.ErrMissingFile
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	return f, p.FileName(), err
}

// byteSizeText writes a size the way the command line's flags take it.
func byteSizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// subscriberForm reads the address and the list's fields of a form.
func subscriberForm(r *http.Request, l *store.List) (string, map[string]string) {
	email := strings.TrimSpace(r.PostFormValue("email"))
	fields := map[string]string{}
	for _, c := range fieldColumns(l) {
		fields[c] = r.PostFormValue("f." + c)
	}
	// A new field, when one is named.
	if name := strings.TrimSpace(r.PostFormValue("newfield")); name != "" && !recipient.IsEmailColumn(name) {
		fields[name] = r.PostFormValue("newvalue")
	}
	return email, fields
}

func (s *server) addSubscriber(w http.ResponseWriter, r *http.Request) {
	l := s.loadList(w, r)
	if l == nil {
		return
	}
	email, fields := subscriberForm(r, l)
	added, err := s.cfg.Audience.Add(r.Context(), l.ID, email, fields, "web")
	var ie *audience.InvalidError
	if errors.As(err, &ie) {
		s.renderList(w, r, http.StatusUnprocessableEntity, l, &listView{Email: email, FieldValues: fields, FieldError: ie.Reason}, "list.badsubscriber")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	done := "subadded"
	if !added {
		done = "subupdated"
	} else if a, err := addr.Parse(email); err == nil {
		s.logConsent(r.Context(), store.Consent{ListID: l.ID, Email: a.String(), Key: a.Key(),
			Action: store.ConsentSubscribe, Source: manualSource(r), IP: clientIP(r)})
	}
	http.Redirect(w, r, listURL(l.ID)+"?done="+done, http.StatusSeeOther)
}

type subscriberPageView struct {
	// Consents are the subscriber's entries of the consent log.
	Consents   []store.Consent
	List       *store.List
	Sub        *store.Subscriber
	Columns    []string
	Values     []string
	Email      string
	FieldError string
}

func (s *server) loadSubscriber(w http.ResponseWriter, r *http.Request) (*store.List, *store.Subscriber) {
	l := s.loadList(w, r)
	if l == nil {
		return nil, nil
	}
	id, ok := idParam(r, "sub")
	if !ok {
		s.notFound(w, r)
		return nil, nil
	}
	sub, err := s.cfg.Audience.Subscriber(r.Context(), l.ID, id)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil
	}
	return l, sub
}

func (s *server) subscriberPage(w http.ResponseWriter, r *http.Request) {
	l, sub := s.loadSubscriber(w, r)
	if sub == nil {
		return
	}
	s.renderSubscriber(w, r, http.StatusOK, l, sub, sub.Email, sub.Fields, "", "")
}

func (s *server) renderSubscriber(w http.ResponseWriter, r *http.Request, status int, l *store.List, sub *store.Subscriber,
	email string, fields map[string]string, fieldErr, errKey string) {
	v := subscriberPageView{List: l, Sub: sub, Columns: fieldColumns(l), Email: email, FieldError: fieldErr}
	for _, c := range v.Columns {
		v.Values = append(v.Values, fields[c])
	}
	var err error
	if v.Consents, err = s.consents(r.Context(), l, sub.Key); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, status, "subscriber", "subscriber.title", v, errKey)
}

func (s *server) updateSubscriber(w http.ResponseWriter, r *http.Request) {
	l, sub := s.loadSubscriber(w, r)
	if sub == nil {
		return
	}
	email, fields := subscriberForm(r, l)
	_, err := s.cfg.Audience.Update(r.Context(), l.ID, sub.ID, email, fields)
	var ie *audience.InvalidError
	switch {
	case errors.As(err, &ie):
		s.renderSubscriber(w, r, http.StatusUnprocessableEntity, l, sub, email, fields, ie.Reason, "list.badsubscriber")
		return
	case errors.Is(err, store.ErrExists):
		s.renderSubscriber(w, r, http.StatusConflict, l, sub, email, fields, "", "subscriber.exists")
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, listURL(l.ID)+"?done=subupdated", http.StatusSeeOther)
}

func (s *server) deleteSubscriber(w http.ResponseWriter, r *http.Request) {
	l, sub := s.loadSubscriber(w, r)
	if sub == nil {
		return
	}
	if err := s.cfg.Audience.DeleteSubscriber(r.Context(), l.ID, sub.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	s.logConsent(r.Context(), store.Consent{ListID: l.ID, Email: sub.Email, Key: sub.Key,
		Action: store.ConsentUnsubscribe, Source: manualSource(r), IP: clientIP(r)})
	http.Redirect(w, r, listURL(l.ID)+"?done=subdeleted", http.StatusSeeOther)
}
