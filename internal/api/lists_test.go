package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"mailout/internal/api"
)

// A list over HTTP: created, a CSV imported (one bad row listed, one
// duplicate updating), paged, and sent as a campaign.
func TestLists(t *testing.T) {
	e := newEnv(t, api.Config{Limits: api.Limits{Body: 1024}})
	r := e.do("POST", "/api/v1/lists", map[string]any{"name": "customers"})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var l api.List
	r.into(t, &l)
	e.do("POST", "/api/v1/lists", map[string]any{"name": "customers"}).wantError(t, http.StatusConflict, "conflict")
	e.do("POST", "/api/v1/lists", map[string]any{"name": " "}).wantError(t, http.StatusBadRequest, "bad-request")

	path := fmt.Sprintf("/api/v1/lists/%d", l.ID)
	auth := "Bearer " + e.token
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

	// Search: a substring of the address or of any field, any case.
	page.Subscribers, page.NextAfter = nil, 0
	e.do("GET", path+"/subscribers?search=ANNA", nil).into(t, &page)
	if len(page.Subscribers) != 1 || page.Subscribers[0].Email != "ana@example.org" || page.Subscribers[0].Source != "api" {
		t.Fatalf("search: %+v", page)
	}

	// A file-level error (no email column) imports nothing.
	e.send("POST", path+"/import", "name\nDora\n", "text/csv", auth).wantError(t, http.StatusBadRequest, "bad-request")

	// The export is CSV with the list's columns in order, and reads back
	// as the same list.
	r = e.send("GET", path+"/export", nil, "", auth)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	want := "\"email\",\"first_name\"\nana@example.org,Anna\nbo@example.org,Bo\ncy@example.org,Cy\n"
	if string(r.body) != want {
		t.Fatalf("export:\n%s\nwant:\n%s", r.body, want)
	}
	// A formula in a cell is quoted, unless raw is asked for.
	e.send("POST", path+"/import", "email,first_name\ndee@example.org,=1+1\n", "text/csv", auth).into(t, &imp)
	for q, line := range map[string]string{"": "dee@example.org,'=1+1\n", "?raw=true": "dee@example.org,=1+1\n"} {
		r = e.send("GET", path+"/export"+q, nil, "", auth)
		if r.status != http.StatusOK || !strings.HasSuffix(string(r.body), line) {
			t.Fatalf("export%s: %d\n%s\nwant it to end with %q", q, r.status, r.body, line)
		}
	}
	var copyList api.List
	e.do("POST", "/api/v1/lists", map[string]any{"name": "copy"}).into(t, &copyList)
	e.send("POST", fmt.Sprintf("/api/v1/lists/%d/import", copyList.ID), string(r.body), "text/csv", auth).into(t, &imp)
	if imp.Imported != 4 || len(imp.Rejected) != 0 {
		t.Fatalf("export imported again: %+v", imp)
	}

	// Deleted: the list is gone, the campaign made from it keeps its
	// recipients.
	if r := e.do("DELETE", path, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	e.do("GET", path, nil).wantError(t, http.StatusNotFound, "not-found")
	e.do("DELETE", path, nil).wantError(t, http.StatusNotFound, "not-found")
	e.send("GET", path+"/export", nil, "", auth).wantError(t, http.StatusNotFound, "not-found")
	var kept api.Campaign
	e.do("GET", fmt.Sprintf("/api/v1/campaigns/%d", c.ID), nil).into(t, &kept)
	if kept.Counts.Total != 3 {
		t.Fatalf("campaign after the list's deletion: %+v", kept.Counts)
	}
}

// A server without the lists service says so on every list route.
func TestListsNotConfigured(t *testing.T) {
	e := newEnv(t, api.Config{}).restart(func(c *api.Config) { c.Lists = nil })
	e.do("GET", "/api/v1/lists", nil).wantError(t, http.StatusNotImplemented, "not-implemented")
	e.do("POST", "/api/v1/lists", map[string]any{"name": "x"}).wantError(t, http.StatusNotImplemented, "not-implemented")
}
