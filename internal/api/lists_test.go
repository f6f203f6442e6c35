package api_test

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mailout/internal/api"
	"mailout/internal/recipient"
	"mailout/internal/store"
)

// memLists is an in-memory list service for the list routes: the real one
// (the store's lists and the lists service) plugs in the same way.
type memLists struct {
	mu    sync.Mutex
	lists []*store.List
	subs  map[int64][]*store.Subscriber
	next  int64
}

func newMemLists() *memLists { return &memLists{subs: map[int64][]*store.Subscriber{}} }

func (m *memLists) CreateList(_ context.Context, l *store.List) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.lists {
		if o.Name == l.Name {
			return store.ErrExists
		}
	}
	m.next++
	l.ID, l.CreatedAt = m.next, time.Now()
	c := *l
	m.lists = append(m.lists, &c)
	return nil
}

func (m *memLists) List(_ context.Context, id int64) (*store.List, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.lists {
		if l.ID == id {
			c := *l
			c.Subscribers = len(m.subs[id])
			return &c, nil
		}
	}
	return nil, store.ErrNotFound
}

func (m *memLists) Lists(ctx context.Context) ([]store.List, error) {
	var out []store.List
	for _, l := range m.lists {
		c, _ := m.List(ctx, l.ID)
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b store.List) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (m *memLists) Subscribers(_ context.Context, listID int64, f store.SubscriberFilter, fn func(*store.Subscriber) error) error {
	m.mu.Lock()
	subs := slices.Clone(m.subs[listID])
	m.mu.Unlock()
	n := 0
	for _, s := range subs {
		if s.ID <= f.AfterID || (f.Search != "" && !strings.Contains(s.Email, f.Search)) {
			continue
		}
		if f.Limit > 0 && n == f.Limit {
			return nil
		}
		n++
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

func (m *memLists) ImportCSV(ctx context.Context, listID int64, r io.Reader, source string, opt recipient.Options) (added, updated int, rejected []recipient.RowError, err error) {
	var rows []recipient.Recipient
	if _, err := recipient.Read(ctx, r, opt, func(rc recipient.Recipient) error {
		rows = append(rows, rc)
		return nil
	}, func(e recipient.RowError) { rejected = append(rejected, e) }); err != nil {
		return 0, 0, nil, err // all or nothing
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rc := range rows {
		i := slices.IndexFunc(m.subs[listID], func(s *store.Subscriber) bool { return s.Key == rc.Address.Key() })
		if i >= 0 {
			m.subs[listID][i].Fields = rc.Fields
			updated++
			continue
		}
		m.next++
		m.subs[listID] = append(m.subs[listID], &store.Subscriber{ID: m.next, ListID: listID, Email: rc.Address.String(),
			Domain: rc.Address.Domain, Key: rc.Address.Key(), Fields: rc.Fields, Source: source})
		added++
	}
	return added, updated, rejected, nil
}

func (m *memLists) Rows(_ context.Context, listID int64) iter.Seq2[*recipient.Recipient, error] {
	return func(yield func(*recipient.Recipient, error) bool) {
		m.mu.Lock()
		subs := slices.Clone(m.subs[listID])
		m.mu.Unlock()
		var b strings.Builder
		b.WriteString("email,first_name\n")
		for _, s := range subs {
			fmt.Fprintf(&b, "%s,%s\n", s.Email, s.Fields["first_name"])
		}
		for r, err := range recipient.Rows(context.Background(), strings.NewReader(b.String()), recipient.Options{}, nil) {
			if !yield(r, err) {
				return
			}
		}
	}
}

// A list over HTTP: created, a CSV imported (one bad row listed, one
// duplicate updating), paged, and sent as a campaign.
func TestLists(t *testing.T) {
	e := newEnv(t, api.Config{Lists: newMemLists(), Limits: api.Limits{Body: 1024}})
	r := e.do("POST", "/api/v1/lists", map[string]any{"name": "customers"})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var l api.List
	r.into(t, &l)
	e.do("POST", "/api/v1/lists", map[string]any{"name": "customers"}).wantError(t, http.StatusConflict, "conflict")
	e.do("POST", "/api/v1/lists", map[string]any{"name": " "}).wantError(t, http.StatusBadRequest, "bad-request")

	path := fmt.Sprintf("/api/v1/lists/%d", l.ID)
	auth := "Bearer " + testToken
	csv := "email,first_name\nana@example.org,Ana\nbroken,X\nbo@example.org,Bo\ncy@example.org,Cy\n"
	var imp api.Imported
	r = e.send("POST", path+"/import", csv, "text/csv; charset=utf-8", auth)
	if r.status != http.StatusOK {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	r.into(t, &imp)
	if imp.Imported != 3 || imp.Updated != 0 || len(imp.Rejected) != 1 || imp.Rejected[0].Line != 3 {
		t.Fatalf("import: %s", r.body)
	}
	e.send("POST", path+"/import", "email,first_name\nana@example.org,Anna\n", "text/csv", auth).into(t, &imp)
	if imp.Imported != 0 || imp.Updated != 1 {
		t.Fatalf("re-import: %+v", imp)
	}
	e.send("POST", path+"/import", csv, "application/json", auth).wantError(t, http.StatusUnsupportedMediaType, "unsupported-media-type")
	big := "email\n" + strings.Repeat("someone@example.org\n", 60)
	if er := e.send("POST", path+"/import", big, "text/csv", auth).wantError(t, http.StatusRequestEntityTooLarge, "too-large"); !strings.Contains(er.Error.Message, "1 KiB") {
		t.Errorf("cap not named: %q", er.Error.Message)
	}
	e.send("POST", "/api/v1/lists/99/import", csv, "text/csv", auth).wantError(t, http.StatusNotFound, "not-found")

	var page struct {
		Subscribers []api.Subscriber `json:"subscribers"`
		NextAfter   int64            `json:"next_after"`
	}
	e.do("GET", path+"/subscribers?limit=2", nil).into(t, &page)
	if len(page.Subscribers) != 2 || page.NextAfter != page.Subscribers[1].ID || page.Subscribers[0].Fields["first_name"] != "Anna" {
		t.Fatalf("page 1: %+v", page)
	}
	after := page.NextAfter
	page.Subscribers, page.NextAfter = nil, 0
	e.do("GET", fmt.Sprintf("%s/subscribers?limit=2&after=%d", path, after), nil).into(t, &page)
	if len(page.Subscribers) != 1 || page.Subscribers[0].Email != "cy@example.org" || page.NextAfter != 0 {
		t.Fatalf("page 2: %+v", page)
	}
	var all struct {
		Lists []api.List `json:"lists"`
	}
	e.do("GET", "/api/v1/lists", nil).into(t, &all)
	if len(all.Lists) != 1 || all.Lists[0].Subscribers != 3 {
		t.Fatalf("lists: %+v", all.Lists)
	}

	// The list as a campaign's recipients.
	var c api.Created
	r = e.do("POST", "/api/v1/campaigns", map[string]any{"name": "from-list", "list_id": l.ID, "message": testMessage,
		"route": map[string]any{"kind": "sandbox"}})
	if r.status != http.StatusCreated {
		t.Fatalf("campaign: %d %s", r.status, r.body)
	}
	r.into(t, &c)
	if c.Imported != 3 {
		t.Fatalf("campaign: %s", r.body)
	}
	e.do("POST", "/api/v1/campaigns", map[string]any{"name": "nolist", "list_id": 99, "message": testMessage,
		"route": map[string]any{"kind": "sandbox"}}).wantError(t, http.StatusBadRequest, "bad-request")
}

// A server without the lists service says so on every list route.
func TestListsNotConfigured(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.do("GET", "/api/v1/lists", nil).wantError(t, http.StatusNotImplemented, "not-implemented")
	e.do("POST", "/api/v1/lists", map[string]any{"name": "x"}).wantError(t, http.StatusNotImplemented, "not-implemented")
}
