package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"mailout/internal/store"
)

// subscriber is a row of an import into a list: the address local@domain,
// its key in lower case, and the fields given as name, value pairs.
func subscriber(line int, email string, fields ...string) *store.NewRecipient {
	domain := email[strings.LastIndexByte(email, '@')+1:]
	f := map[string]string{"email": email}
	for i := 0; i+1 < len(fields); i += 2 {
		f[fields[i]] = fields[i+1]
	}
	return &store.NewRecipient{Line: line, Email: email, Domain: strings.ToLower(domain), Key: strings.ToLower(email), Fields: f}
}

// rows returns a next function over rs.
func rows(rs ...*store.NewRecipient) func() (*store.NewRecipient, error) {
	i := 0
	return func() (*store.NewRecipient, error) {
		if i == len(rs) {
			return nil, nil
		}
		i++
		return rs[i-1], nil
	}
}

func newList(t *testing.T, s store.Store, name string) *store.List {
	t.Helper()
	l := &store.List{Name: name}
	if err := s.CreateList(context.Background(), l); err != nil {
		t.Fatalf("CreateList(%q): %v", name, err)
	}
	return l
}

func importInto(t *testing.T, s store.Store, list int64, source string, rs ...*store.NewRecipient) (added, updated int) {
	t.Helper()
	added, updated, err := s.ImportSubscribers(context.Background(), list, source, false, rows(rs...))
	if err != nil {
		t.Fatalf("ImportSubscribers: %v", err)
	}
	return added, updated
}

func subscribers(t *testing.T, s store.Store, list int64, f store.SubscriberFilter) []store.Subscriber {
	t.Helper()
	var out []store.Subscriber
	if err := s.Subscribers(context.Background(), list, f, func(x *store.Subscriber) error {
		out = append(out, *x)
		return nil
	}); err != nil {
		t.Fatalf("Subscribers(%+v): %v", f, err)
	}
	return out
}

func emails(ss []store.Subscriber) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Email
	}
	return out
}

func getList(t *testing.T, s store.Store, id int64) *store.List {
	t.Helper()
	l, err := s.List(context.Background(), id)
	if err != nil {
		t.Fatalf("List(%d): %v", id, err)
	}
	return l
}

// Lists are created by unique name, read back by id and by name order,
// renamed (not onto another's name) and counted.
func testListsCreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	before := msNow()
	news := newList(t, s, "newsletter")
	if news.ID == 0 || news.CreatedAt.Before(before) {
		t.Fatalf("CreateList set ID %d, CreatedAt %v (before %v)", news.ID, news.CreatedAt, before)
	}
	if err := s.CreateList(ctx, &store.List{Name: "newsletter"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateList of a taken name: %v, want ErrExists", err)
	}
	club := newList(t, s, "book club")
	importInto(t, s, club.ID, "web", subscriber(2, "a@example.org"), subscriber(3, "b@example.org"))

	got := getList(t, s, club.ID)
	if got.Name != "book club" || got.Subscribers != 2 || !got.CreatedAt.Equal(club.CreatedAt) {
		t.Errorf("List = %+v, want book club with 2 subscribers created at %v", got, club.CreatedAt)
	}
	all, err := s.Lists(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var counts []int
	for _, l := range all {
		names, counts = append(names, l.Name), append(counts, l.Subscribers)
	}
	if !slices.Equal(names, []string{"book club", "newsletter"}) || !slices.Equal(counts, []int{2, 0}) {
		t.Errorf("Lists = %v with %v subscribers, want [book club newsletter] with [2 0]", names, counts)
	}

	if err := s.RenameList(ctx, club.ID, "newsletter"); !errors.Is(err, store.ErrExists) {
		t.Errorf("RenameList onto a taken name: %v, want ErrExists", err)
	}
	if err := s.RenameList(ctx, club.ID, "readers"); err != nil {
		t.Fatal(err)
	}
	if l := getList(t, s, club.ID); l.Name != "readers" {
		t.Errorf("after RenameList the name is %q", l.Name)
	}
	if err := s.RenameList(ctx, club.ID+news.ID+100, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RenameList of no list: %v, want ErrNotFound", err)
	}
	if _, err := s.List(ctx, club.ID+news.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("List of no list: %v, want ErrNotFound", err)
	}
}

// An import adds new keys and updates the address and fields of a key
// already in the list, keeping its id, source and creation time; the
// list's columns grow by the new names in the order given.
func testListsImportUpdates(t *testing.T, s store.Store) {
	ctx := context.Background()
	l := newList(t, s, "members")
	first := []*store.NewRecipient{
		subscriber(2, "ana@example.org", "name", "Ana"),
		subscriber(3, "bo@example.org", "name", "Bo"),
	}
	for _, r := range first {
		r.Columns = []string{"name", "email"}
	}
	if a, u := importInto(t, s, l.ID, "import:first.csv", first...); a != 2 || u != 0 {
		t.Fatalf("first import: %d added, %d updated; want 2, 0", a, u)
	}
	before := subscribers(t, s, l.ID, store.SubscriberFilter{})

	// Bo's key again with the address written in another case, and a new
	// column; Cy is new.
	bo := subscriber(2, "BO@example.org", "name", "Bo B.", "city", "Oslo")
	bo.Key = "bo@example.org"
	cy := subscriber(3, "cy@example.org", "name", "Cy", "city", "Rome", "age", "40")
	for _, r := range []*store.NewRecipient{bo, cy} {
		r.Columns = []string{"email", "name", "city", "age"}
	}
	if a, u := importInto(t, s, l.ID, "import:second.csv", bo, cy); a != 1 || u != 1 {
		t.Fatalf("second import: %d added, %d updated; want 1, 1", a, u)
	}
	after := subscribers(t, s, l.ID, store.SubscriberFilter{})
	if got := emails(after); !slices.Equal(got, []string{"ana@example.org", "BO@example.org", "cy@example.org"}) {
		t.Fatalf("subscribers after the second import: %v", got)
	}
	b := after[1]
	if b.ID != before[1].ID || b.Source != "import:first.csv" || !b.CreatedAt.Equal(before[1].CreatedAt) {
		t.Errorf("updated subscriber %+v lost its id, source or creation time (was %+v)", b, before[1])
	}
	if want := map[string]string{"email": "BO@example.org", "name": "Bo B.", "city": "Oslo"}; !maps.Equal(b.Fields, want) {
		t.Errorf("updated fields %v, want %v", b.Fields, want)
	}
	if after[2].Source != "import:second.csv" || after[2].ListID != l.ID || after[2].Domain != "example.org" {
		t.Errorf("added subscriber %+v", after[2])
	}
	if got := getList(t, s, l.ID).Columns; !slices.Equal(got, []string{"name", "email", "city", "age"}) {
		t.Errorf("columns %v, want [name email city age]: grown in the order imported", got)
	}

	// The same key twice in one import, alone and among many rows: added
	// once, then updated, the last row's fields kept.
	d1, d2 := subscriber(2, "dee@example.org", "name", "D1"), subscriber(3, "dee@example.org", "name", "D2")
	if a, u := importInto(t, s, l.ID, "api", d1, d2); a != 1 || u != 1 {
		t.Errorf("a key twice in one import: %d added, %d updated; want 1, 1", a, u)
	}
	var twice []*store.NewRecipient
	for i := range 130 {
		twice = append(twice, subscriber(i+2, fmt.Sprintf("t%d@example.org", i/2), "n", fmt.Sprint(i)))
	}
	if a, u := importInto(t, s, l.ID, "api", twice...); a != 65 || u != 65 {
		t.Errorf("130 rows, each key twice: %d added, %d updated; want 65, 65", a, u)
	}
	for _, x := range subscribers(t, s, l.ID, store.SubscriberFilter{Search: "t7@example.org"}) {
		if x.Fields["n"] != "15" {
			t.Errorf("t7@: fields %v, want the second row's (n 15)", x.Fields)
		}
	}

	// Many rows, new and known ones mixed, counted right.
	many := func(from, to int) []*store.NewRecipient {
		var rs []*store.NewRecipient
		for i := from; i < to; i++ {
			rs = append(rs, subscriber(i+2, fmt.Sprintf("m%d@example.org", i), "n", fmt.Sprint(i)))
		}
		return rs
	}
	if a, u := importInto(t, s, l.ID, "api", many(0, 150)...); a != 150 || u != 0 {
		t.Errorf("150 new rows: %d added, %d updated", a, u)
	}
	if a, u := importInto(t, s, l.ID, "api", many(100, 350)...); a != 200 || u != 50 {
		t.Errorf("250 rows of which 50 known: %d added, %d updated; want 200, 50", a, u)
	}
	if n := getList(t, s, l.ID).Subscribers; n != 4+65+350 {
		t.Errorf("%d subscribers, want %d", n, 4+65+350)
	}
	if _, _, err := s.ImportSubscribers(ctx, l.ID+100, "api", true, rows(subscriber(2, "x@example.org"))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("import into no list: %v, want ErrNotFound", err)
	}
}

// An import whose source fails halfway stores nothing: no subscriber, no
// update, no new column.
func testListsImportAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	l := newList(t, s, "atomic")
	importInto(t, s, l.ID, "web", subscriber(2, "keep@example.org", "name", "Old"))
	boom := errors.New("disk on fire")
	n := 0
	next := func() (*store.NewRecipient, error) {
		n++
		switch {
		case n == 1:
			return subscriber(2, "keep@example.org", "name", "New", "extra", "x"), nil
		case n <= 500:
			return subscriber(n+1, fmt.Sprintf("r%d@example.org", n)), nil
		}
		return nil, boom
	}
	if _, _, err := s.ImportSubscribers(ctx, l.ID, "import:bad.csv", true, next); !errors.Is(err, boom) {
		t.Fatalf("ImportSubscribers with a failing source: %v, want it wrapped", err)
	}
	got := subscribers(t, s, l.ID, store.SubscriberFilter{})
	if len(got) != 1 || got[0].Fields["name"] != "Old" {
		t.Errorf("after a failed import: %+v, want only keep@ unchanged", got)
	}
	if cols := getList(t, s, l.ID).Columns; slices.Contains(cols, "extra") {
		t.Errorf("a failed import grew the columns: %v", cols)
	}
	if got := consents(t, s, l.ID, ""); len(got) != 0 {
		t.Errorf("a failed import left consent entries: %+v", got)
	}
}

// Search matches a substring of the email or of any field value in any
// case; AfterID and Limit page through the matches in id order.
func testListsSearchAndPaging(t *testing.T, s store.Store) {
	l := newList(t, s, "search")
	other := newList(t, s, "other")
	var rs []*store.NewRecipient
	for i := range 10 {
		city := "Paris"
		if i%2 == 1 {
			city = "Zürich"
		}
		rs = append(rs, subscriber(i+2, fmt.Sprintf("user%d@Example.org", i), "city", city, "name", fmt.Sprintf("Name %d", i)))
	}
	importInto(t, s, l.ID, "web", rs...)
	importInto(t, s, other.ID, "web", subscriber(2, "user1@example.org", "city", "Paris"))

	all := subscribers(t, s, l.ID, store.SubscriberFilter{})
	if len(all) != 10 {
		t.Fatalf("%d subscribers, want 10 (the other list's are not included)", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Fatalf("not in id order: %v", all)
		}
	}
	for _, tc := range []struct {
		q    string
		want int
	}{
		{"PARIS", 5}, {"zür", 5}, {"EXAMPLE.ORG", 10}, {"user3@", 1}, {"name 7", 1}, {"city", 0}, {"nobody", 0},
		{"%", 0}, {"_", 0}, {`\`, 0}, // no wildcard: a substring as written
	} {
		if got := subscribers(t, s, l.ID, store.SubscriberFilter{Search: tc.q}); len(got) != tc.want {
			t.Errorf("Search %q: %d subscribers %v, want %d", tc.q, len(got), emails(got), tc.want)
		}
	}

	// Pages of 2 of the Paris subscribers, by the last id of each page.
	var paged []string
	var after int64
	for pages := 0; ; pages++ {
		page := subscribers(t, s, l.ID, store.SubscriberFilter{Search: "paris", AfterID: after, Limit: 2})
		if len(page) == 0 {
			break
		}
		if len(page) > 2 || pages > 5 {
			t.Fatalf("page of %d after id %d (page %d)", len(page), after, pages)
		}
		paged = append(paged, emails(page)...)
		after = page[len(page)-1].ID
	}
	if want := []string{"user0@Example.org", "user2@Example.org", "user4@Example.org", "user6@Example.org", "user8@Example.org"}; !slices.Equal(paged, want) {
		t.Errorf("paged search: %v, want %v", paged, want)
	}
	if got := subscribers(t, s, l.ID, store.SubscriberFilter{AfterID: all[7].ID}); !slices.Equal(emails(got), emails(all[8:])) {
		t.Errorf("AfterID %d: %v, want %v", all[7].ID, emails(got), emails(all[8:]))
	}

	stop := errors.New("stop")
	n := 0
	err := s.Subscribers(context.Background(), l.ID, store.SubscriberFilter{}, func(*store.Subscriber) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("an error from fn: %v after %d calls, want it returned after 1", err, n)
	}
	if err := s.Subscribers(context.Background(), l.ID+other.ID+100, store.SubscriberFilter{}, func(*store.Subscriber) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Subscribers of no list: %v, want ErrNotFound", err)
	}
}

// UpdateSubscriber edits one subscriber, refuses the key of another
// (ErrExists) and grows the list's columns; DeleteSubscriber deletes one.
func testListsUpdateDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	l := newList(t, s, "edit")
	importInto(t, s, l.ID, "web", subscriber(2, "a@example.org", "name", "A"), subscriber(3, "b@example.org", "name", "B"))
	ss := subscribers(t, s, l.ID, store.SubscriberFilter{})
	a, b := ss[0], ss[1]

	clash := a
	clash.Email, clash.Key, clash.Fields = "B@example.org", "b@example.org", map[string]string{"email": "B@example.org"}
	if err := s.UpdateSubscriber(ctx, &clash); !errors.Is(err, store.ErrExists) {
		t.Fatalf("UpdateSubscriber onto another's key: %v, want ErrExists", err)
	}

	edit := a
	edit.Email, edit.Domain, edit.Key = "ann@example.net", "example.net", "ann@example.net"
	edit.Fields = map[string]string{"email": "ann@example.net", "name": "Ann", "phone": "123"}
	if err := s.UpdateSubscriber(ctx, &edit); err != nil {
		t.Fatal(err)
	}
	got, err := s.Subscriber(ctx, l.ID, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "ann@example.net" || got.Domain != "example.net" || got.Key != "ann@example.net" ||
		!maps.Equal(got.Fields, edit.Fields) || got.Source != "web" || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("after UpdateSubscriber: %+v, want %+v", got, edit)
	}
	if cols := getList(t, s, l.ID).Columns; !slices.Contains(cols, "phone") {
		t.Errorf("columns %v lack the field the update added", cols)
	}
	// The old key is free again for an import.
	if a2, _ := importInto(t, s, l.ID, "web", subscriber(4, "a@example.org")); a2 != 1 {
		t.Errorf("the edited subscriber's old key was not free: %d added", a2)
	}

	if err := s.DeleteSubscriber(ctx, l.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Subscriber(ctx, l.ID, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Subscriber after DeleteSubscriber: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSubscriber(ctx, l.ID, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteSubscriber twice: %v, want ErrNotFound", err)
	}
	other := newList(t, s, "other")
	if _, err := s.Subscriber(ctx, other.ID, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Subscriber through another list: %v, want ErrNotFound", err)
	}
	missing := edit
	missing.ID = a.ID + b.ID + 100
	missing.Key = "nobody@example.org"
	if err := s.UpdateSubscriber(ctx, &missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateSubscriber of no subscriber: %v, want ErrNotFound", err)
	}
	if n := getList(t, s, l.ID).Subscribers; n != 2 {
		t.Errorf("%d subscribers counted, want 2", n)
	}
}

// DeleteList deletes the list and its subscribers; a campaign made from
// the same recipients keeps them.
func testListsDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	l := newList(t, s, "gone")
	keep := newList(t, s, "kept")
	importInto(t, s, l.ID, "web", subscriber(2, "a@example.org"), subscriber(3, "b@example.org"))
	importInto(t, s, keep.ID, "web", subscriber(2, "a@example.org"))
	c := importN(t, s, "from-list", 2)

	if err := s.DeleteList(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx, l.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("List after DeleteList: %v, want ErrNotFound", err)
	}
	if err := s.Subscribers(ctx, l.ID, store.SubscriberFilter{}, func(*store.Subscriber) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Subscribers after DeleteList: %v, want ErrNotFound", err)
	}
	if err := s.DeleteList(ctx, l.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteList twice: %v, want ErrNotFound", err)
	}
	// A new list of the same name starts empty.
	again := newList(t, s, "gone")
	if n := getList(t, s, again.ID).Subscribers; n != 0 {
		t.Errorf("a new list of a deleted one's name has %d subscribers", n)
	}
	if n := getList(t, s, keep.ID).Subscribers; n != 1 {
		t.Errorf("the other list has %d subscribers, want 1", n)
	}
	if got := counts(t, s, c.ID).Total; got != 2 {
		t.Errorf("the campaign has %d recipients after DeleteList, want 2", got)
	}
}
