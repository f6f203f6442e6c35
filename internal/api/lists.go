package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"mailout/internal/audience"
	"mailout/internal/recipient"
	"mailout/internal/store"
)

// List is a list as the API shows it.
type List struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	CreatedAt   time.Time `json:"created_at"`
	Columns     []string  `json:"columns"`
	Subscribers int       `json:"subscribers"`
}

func listView(l *store.List) *List {
	v := &List{ID: l.ID, Name: l.Name, CreatedAt: l.CreatedAt, Columns: l.Columns, Subscribers: l.Subscribers}
	if v.Columns == nil {
		v.Columns = []string{}
	}
	return v
}

// NewList is the body of POST /api/v1/lists.
type NewList struct {
	Name string `json:"name"`
}

// Imported is the answer to a CSV import into a list.
type Imported struct {
	Imported int           `json:"imported"`
	Updated  int           `json:"updated"`
	Rejected []RejectedRow `json:"rejected"`
}

// Subscriber is one subscriber of a list.
type Subscriber struct {
	ID        int64             `json:"id"`
	Email     string            `json:"email"`
	Domain    string            `json:"domain"`
	Fields    map[string]string `json:"fields"`
	Source    string            `json:"source"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// lists is the lists service, or a 501 when the server has none.
func (s *server) lists() (*audience.Service, error) {
	if s.cfg.Lists == nil {
		return nil, notImplemented("lists")
	}
	return s.cfg.Lists, nil
}

func (s *server) createList(w http.ResponseWriter, r *http.Request) {
	ls, err := s.lists()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req NewList
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	l, err := ls.Create(r.Context(), req.Name)
	var inv *audience.InvalidError
	switch {
	case errors.As(err, &inv):
		err = badRequest("name", "%s", inv.Reason)
	case errors.Is(err, store.ErrExists):
		err = conflict("a list named %q exists already", strings.TrimSpace(req.Name))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, listView(l))
}

func (s *server) listLists(w http.ResponseWriter, r *http.Request) {
	ls, err := s.lists()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	all, err := ls.All(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Lists []*List `json:"lists"`
	}{Lists: []*List{}}
	for i := range all {
		out.Lists = append(out.Lists, listView(&all[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// list reads the list of the path.
func (s *server) list(r *http.Request) (*audience.Service, *store.List, error) {
	ls, err := s.lists()
	if err != nil {
		return nil, nil, err
	}
	id, err := campaignID(r)
	if err != nil {
		return nil, nil, err
	}
	l, err := ls.Get(r.Context(), id)
	return ls, l, err
}

func (s *server) getList(w http.ResponseWriter, r *http.Request) {
	_, l, err := s.list(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listView(l))
}

// deleteList deletes the list and its subscribers; campaigns made from it
// keep their recipients.
func (s *server) deleteList(w http.ResponseWriter, r *http.Request) {
	ls, l, err := s.list(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := ls.Delete(r.Context(), l.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// importList imports a CSV body (text/csv) under the command line's CSV
// rules and caps: bad rows are listed, the others imported; a file-level
// error (a cap, not CSV) imports nothing (413 or 400).
func (s *server) importList(w http.ResponseWriter, r *http.Request) {
	ls, l, err := s.list(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := requireType(r, "text/csv"); err != nil {
		s.fail(w, r, err)
		return
	}
	opt := s.cfg.Limits.List
	opt.MaxBytes = s.cfg.Limits.Body
	body := http.MaxBytesReader(w, r.Body, s.cfg.Limits.Body+1)
	res, err := ls.Import(r.Context(), l.ID, body, "api", opt)
	var (
		fe  *recipient.FileError
		mbe *http.MaxBytesError
	)
	switch {
	case err == nil:
	case errors.As(err, &mbe):
		s.fail(w, r, tooLarge("the CSV body", s.cfg.Limits.Body))
		return
	case errors.As(err, &fe):
		s.fail(w, r, listFileError("body", fe, Limits{List: opt}))
		return
	default:
		s.fail(w, r, err)
		return
	}
	out := Imported{Imported: res.Added, Updated: res.Updated, Rejected: []RejectedRow{}}
	for _, e := range res.Rejected {
		out.Rejected = append(out.Rejected, RejectedRow{Line: e.Line, Reason: e.Reason})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) listSubscribers(w http.ResponseWriter, r *http.Request) {
	ls, l, err := s.list(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after, limit, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// One more than the page tells whether another page follows.
	f := store.SubscriberFilter{Search: r.URL.Query().Get("search"), AfterID: after, Limit: limit + 1}
	subs, err := ls.Subscribers(r.Context(), l.ID, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Subscribers []Subscriber `json:"subscribers"`
		NextAfter   int64        `json:"next_after,omitempty"`
	}{Subscribers: []Subscriber{}}
	if len(subs) > limit {
		subs = subs[:limit]
		out.NextAfter = subs[limit-1].ID
	}
	for _, sub := range subs {
		v := Subscriber{ID: sub.ID, Email: sub.Email, Domain: sub.Domain, Fields: sub.Fields,
			Source: sub.Source, CreatedAt: sub.CreatedAt, UpdatedAt: sub.UpdatedAt}
		if v.Fields == nil {
			v.Fields = map[string]string{}
		}
		out.Subscribers = append(out.Subscribers, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// exportList writes the list as CSV (RFC 4180, text/csv): its columns in
// order, one row per subscriber, cells a spreadsheet would run as formulas
// quoted unless ?raw=true; importing it again gives the same list.
func (s *server) exportList(w http.ResponseWriter, r *http.Request) {
	ls, l, err := s.list(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// RFC 7111 §5.1: text/csv, with the optional header parameter.
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.Header().Set("Cache-Control", "no-store")
	// RFC 6266 §4.1: offered as a file named after the list's id.
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="list-%d.csv"`, l.ID))
	if err := ls.Export(r.Context(), l.ID, w, r.URL.Query().Get("raw") == "true"); err != nil {
		// The status is sent already: the client sees a cut answer.
		s.log.Error("list export failed", "list", l.ID, "err", err)
		panic(http.ErrAbortHandler)
	}
}
