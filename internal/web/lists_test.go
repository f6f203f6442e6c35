package web

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"mailout/internal/audience"
	"mailout/internal/store"
)

// upload posts file as the "file" part of a multipart form.
func (a *app) upload(path, name string, file []byte) (*http.Response, string) {
	a.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		a.t.Fatal(err)
	}
	_, _ = fw.Write(file)
	_ = mw.Close()
	return a.do(http.MethodPost, path, &body, http.Header{"Content-Type": {mw.FormDataContentType()}})
}

// newList creates a list with the rows of csv through the lists service.
func (a *app) newList(name, csv string) *store.List {
	a.t.Helper()
	ls := audience.New(a.svc.Store())
	l, err := ls.Create(context.Background(), name)
	if err != nil {
		a.t.Fatal(err)
	}
	if csv != "" {
		if _, err := ls.Import(context.Background(), l.ID, strings.NewReader(csv), "test", DefaultImportLimits().List); err != nil {
			a.t.Fatal(err)
		}
	}
	return l
}

func (a *app) subscribers(listID int64) []store.Subscriber {
	a.t.Helper()
	subs, err := audience.New(a.svc.Store()).Subscribers(context.Background(), listID, store.SubscriberFilter{})
	if err != nil {
		a.t.Fatal(err)
	}
	return subs
}

func location(res *http.Response) string { return res.Header.Get("Location") }

// A list is made, filled, edited and deleted from its pages.
func TestListPagesCreateEditAndDelete(t *testing.T) {
	a := newApp(t)
	a.signIn()
	res := a.post("/lists", url.Values{"name": {"Newsletter"}}, nil)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(location(res), "/lists/") {
		t.Fatalf("create: %s to %q", res.Status, location(res))
	}
	page := strings.TrimSuffix(location(res), "?done=listcreated")
	if res := a.post("/lists", url.Values{"name": {"Newsletter"}}, nil); res.StatusCode != http.StatusConflict {
		t.Errorf("a second list of the same name: %s, want 409", res.Status)
	}
	if res := a.post("/lists", url.Values{"name": {"  "}}, nil); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a list without a name: %s, want 422", res.Status)
	}

	res = a.post(page+"/subscribers", url.Values{"email": {"ana@example.org"}, "newfield": {"first_name"}, "newvalue": {"Ana"}}, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %s", res.Status)
	}
	res, body := a.do(http.MethodPost, page+"/subscribers", strings.NewReader(url.Values{"email": {"not an address"}}.Encode()), nil)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "invalid address") {
		t.Errorf("add a bad address: %s; the page should give the reason", res.Status)
	}
	res, body = a.get("/lists")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, ">Newsletter</a></td><td>1</td>") {
		t.Errorf("lists page: %s, want Newsletter with 1 subscriber:\n%s", res.Status, body)
	}
	res, body = a.get(page)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "<td>ana@example.org</td><td>Ana</td>") || !strings.Contains(body, "<th scope=\"col\">first_name</th>") {
		t.Fatalf("list page: %s, want ana with her first name:\n%s", res.Status, body)
	}
	var listID int64
	fmt.Sscanf(page, "/lists/%d", &listID)
	sub := a.subscribers(listID)[0]
	subPage := fmt.Sprintf("%s/subscribers/%d", page, sub.ID)
	if res, body := a.get(subPage); res.StatusCode != http.StatusOK || !strings.Contains(body, `value="ana@example.org"`) || !strings.Contains(body, `value="Ana"`) {
		t.Errorf("edit form: %s", res.Status)
	}
	res = a.post(subPage, url.Values{"email": {"ana.b@example.org"}, "f.first_name": {"Ana B"}}, nil)
	if got := a.subscribers(listID); res.StatusCode != http.StatusSeeOther || got[0].Email != "ana.b@example.org" || got[0].Fields["first_name"] != "Ana B" {
		t.Errorf("edit: %s, stored %+v", res.Status, got)
	}
	a.post(page+"/subscribers", url.Values{"email": {"bo@example.org"}}, nil)
	if res := a.post(subPage, url.Values{"email": {"bo@example.org"}}, nil); res.StatusCode != http.StatusConflict {
		t.Errorf("edit to another subscriber's address: %s, want 409", res.Status)
	}
	// Search.
	if _, body := a.get(page + "?q=bo%40"); !strings.Contains(body, "bo@example.org") || strings.Contains(body, "ana.b@example.org</td>") {
		t.Errorf("search for bo@ shows the wrong rows:\n%s", body)
	}
	// Export.
	res, body = a.get(page + "/export.csv")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(body, "ana.b@example.org,Ana B") || !strings.Contains(body, "bo@example.org,") {
		t.Errorf("export: %s %q", res.Status, body)
	}
	// Delete a subscriber.
	if res := a.post(subPage+"/delete", nil, nil); res.StatusCode != http.StatusSeeOther || len(a.subscribers(listID)) != 1 {
		t.Errorf("delete subscriber: %s, %d left", res.Status, len(a.subscribers(listID)))
	}
	// Rename.
	if res := a.post(page+"/rename", url.Values{"name": {"Weekly"}}, nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("rename: %s", res.Status)
	}
	if _, body := a.get("/lists"); !strings.Contains(body, ">Weekly</a>") {
		t.Error("the renamed list is not shown under its new name")
	}
	// Delete the list: a confirmation page first, then the POST.
	res, body = a.get(page + "/delete")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `action="`+page+`/delete"`) || !strings.Contains(body, "Weekly") {
		t.Errorf("delete confirmation: %s", res.Status)
	}
	if _, err := a.svc.Store().List(context.Background(), listID); err != nil {
		t.Fatalf("the confirmation page deleted the list: %v", err)
	}
	if res := a.post(page+"/delete", nil, nil); res.StatusCode != http.StatusSeeOther || location(res) != "/lists?done=listdeleted" {
		t.Errorf("delete: %s to %q", res.Status, location(res))
	}
	if res, _ := a.get(page); res.StatusCode != http.StatusNotFound {
		t.Errorf("deleted list's page: %s, want 404", res.Status)
	}
}

// The list's page shows 50 subscribers at a time with a link to the next.
func TestListPageIsPaged(t *testing.T) {
	a := newApp(t)
	a.signIn()
	var csv strings.Builder
	csv.WriteString("email\n")
	for i := range 120 {
		fmt.Fprintf(&csv, "u%03d@example.org\n", i)
	}
	l := a.newList("big", csv.String())
	_, body := a.get(listURL(l.ID))
	if n := strings.Count(body, "@example.org</td>"); n != 50 || !strings.Contains(body, "u049@") || strings.Contains(body, "u050@") {
		t.Fatalf("first page shows %d subscribers, want u000…u049", n)
	}
	subs := a.subscribers(l.ID)
	next := fmt.Sprintf(`href="/lists/%d?q=&amp;after=%d"`, l.ID, subs[49].ID)
	if !strings.Contains(body, next) {
		t.Fatalf("no link to the next page (%s)", next)
	}
	_, body = a.get(fmt.Sprintf("/lists/%d?after=%d", l.ID, subs[99].ID))
	if n := strings.Count(body, "@example.org</td>"); n != 20 || !strings.Contains(body, "u100@") || strings.Contains(body, "after=") {
		t.Errorf("last page shows %d subscribers, want 20 and no next link", n)
	}
}

// A CSV file with a bad row: the row is listed with its line and reason,
// the rest are imported.
func TestListImportReportsBadRows(t *testing.T) {
	a := newApp(t)
	a.signIn()
	l := a.newList("news", "email,name\nold@example.org,Old\n")
	res, body := a.upload(listURL(l.ID)+"/import", "people.csv", []byte("email,name\nnew@example.org,New\nnot-an-address,Bad\nold@example.org,Older\n"))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("import: %s\n%s", res.Status, body)
	}
	if !strings.Contains(body, "1 added, 1 updated, 1 rejected.") {
		t.Errorf("the result does not count the rows:\n%s", body)
	}
	if !strings.Contains(body, "<tr><td>3</td><td>not-an-address</td><td>invalid address") {
		t.Errorf("the bad row is not shown with its line 3 and reason:\n%s", body)
	}
	if got := a.subscribers(l.ID); len(got) != 2 || got[0].Fields["name"] != "Older" || got[1].Email != "new@example.org" {
		t.Errorf("stored %+v, want old updated and new added", got)
	}
	if got := a.subscribers(l.ID); got[1].Source != "import:people.csv" {
		t.Errorf("source %q, want import:people.csv", got[1].Source)
	}
}

// A file over the upload cap is refused naming the cap; nothing is
// imported.
func TestListImportOverTheCapIsRefused(t *testing.T) {
	a := newApp(t, appOptions{doctor: func(c *Config) { c.Import.Body = 1 << 10 }})
	a.signIn()
	l := a.newList("news", "")
	big := "email\n" + strings.Repeat("someone@example.org\n", 100) // 2 KiB
	res, body := a.upload(listURL(l.ID)+"/import", "big.csv", []byte(big))
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, `<span class="field-error">The file is larger than the cap of 1 KiB.</span>`) {
		t.Errorf("upload over the cap: %s, want 413 naming the cap of 1 KiB:\n%s", res.Status, body)
	}
	if n := len(a.subscribers(l.ID)); n != 0 {
		t.Errorf("%d subscribers imported from a refused file", n)
	}
	// Under the cap it goes in.
	if res, _ := a.upload(listURL(l.ID)+"/import", "small.csv", []byte("email\nsomeone@example.org\n")); res.StatusCode != http.StatusOK || len(a.subscribers(l.ID)) != 1 {
		t.Errorf("upload under the cap: %s", res.Status)
	}
}

// A file-level error (the row cap of the command line, no address
// column) imports nothing and says why.
func TestListImportFileErrorImportsNothing(t *testing.T) {
	a := newApp(t, appOptions{doctor: func(c *Config) { c.Import.List.MaxRows = 2 }})
	a.signIn()
	l := a.newList("news", "")
	for _, tc := range []struct{ file, reason string }{
		{"name\nAna\n", "email"},
		{"email\na@example.org\nb@example.org\nc@example.org\n", "2"},
	} {
		res, body := a.upload(listURL(l.ID)+"/import", "f.csv", []byte(tc.file))
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Nothing was imported:") {
			t.Errorf("%q: %s, want 422 saying nothing was imported:\n%s", tc.file, res.Status, body)
		}
		if !strings.Contains(body, "<code>") || !strings.Contains(body[strings.Index(body, "<code>"):], tc.reason) {
			t.Errorf("%q: the reason does not name %q:\n%s", tc.file, tc.reason, body)
		}
		if n := len(a.subscribers(l.ID)); n != 0 {
			t.Errorf("%q: %d subscribers imported", tc.file, n)
		}
	}
	if res, body := a.do(http.MethodPost, listURL(l.ID)+"/import", strings.NewReader("x"), http.Header{"Content-Type": {"multipart/form-data; boundary=zz"}}); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Choose a CSV file") {
		t.Errorf("an upload without a file: %s, want 422 asking for one", res.Status)
	}
	if res, _ := a.do(http.MethodPost, listURL(l.ID)+"/import", strings.NewReader("email=x"), nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("a form that is not multipart: %s, want 400", res.Status)
	}
}

// The list's page shows its suppressed addresses with reason and date.
func TestListPageShowsSuppressedAddresses(t *testing.T) {
	a := newApp(t)
	a.signIn()
	l := a.newList("news", "email\nok@example.org\ngone@example.org\nx@blocked.example\n")
	at := time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)
	ctx := context.Background()
	for _, s := range []store.Suppression{{Key: "gone@example.org", Reason: "unsubscribed", Source: "manual", At: at},
		{Key: "@blocked.example", Reason: "complaint", Source: "manual", At: at}} {
		if err := a.svc.Store().Suppress(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	_, body := a.get(listURL(l.ID))
	sec := body[strings.Index(body, "Suppressed addresses"):]
	for _, want := range []string{"<td>gone@example.org</td><td>unsubscribed</td><td>manual</td>", "<td>x@blocked.example</td><td>complaint</td>", `datetime="2026-03-04T05:06:00Z"`} {
		if !strings.Contains(sec, want) {
			t.Errorf("suppressed section lacks %q:\n%s", want, sec)
		}
	}
	if strings.Contains(sec, "ok@example.org") {
		t.Error("an address that is not suppressed is listed as suppressed")
	}
}

// Unknown lists and subscribers answer 404.
func TestListPagesUnknownIDs(t *testing.T) {
	a := newApp(t)
	a.signIn()
	l := a.newList("news", "email\na@example.org\n")
	for _, p := range []string{"/lists/999", "/lists/abc", listURL(l.ID) + "/subscribers/999", "/lists/999/export.csv", "/lists/999/delete"} {
		if res, _ := a.get(p); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", p, res.Status)
		}
	}
}
