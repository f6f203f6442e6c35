package campaign

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"mailout/internal/queue"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

const testMessage = "From: Shop <news@example.com>\nSubject: Hello {{.first_name}}\n\nDear {{.first_name}},\nyour address is {{.email}}.\n"

// newRelayCampaign opens a service over a new database and creates a
// campaign of list (CSV) on the relay route to srv.
func newRelayCampaign(t *testing.T, srv *smtptest.Server, list string) (*Service, *Routing, *store.Campaign) {
	t.Helper()
	return newRelayCampaignAt(t, filepath.Join(t.TempDir(), "mailout.db"), srv, list, Options{})
}

// newRelayCampaignAt is newRelayCampaign on the database at path, with
// the service's options o.
func newRelayCampaignAt(t *testing.T, path string, srv *smtptest.Server, list string, o Options) (*Service, *Routing, *store.Campaign) {
	t.Helper()
	ctx := context.Background()
	svc, err := Open(ctx, path, true, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	rt, err := RouteConfig{Relays: []string{"smtp+insecure://" + srv.Addr}, HELO: "sender.mailout.test"}.Check(route.Sandbox, Env{})
	if err != nil {
		t.Fatal(err)
	}
	draft, err := NewCampaign{Name: "spring", Routing: rt, MaxAge: 3600e9, RetryMin: 60e9,
		Message: &store.Message{Template: []byte(testMessage), TemplateName: "message.txt"},
		Profile: oneAtATime}.Check(Env{})
	if err != nil {
		t.Fatal(err)
	}
	c, n, err := svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader(list), recipient.Options{}, nil), nil)
	if err != nil || n == 0 {
		t.Fatalf("Create: %d imported, %v", n, err)
	}
	return svc, rt, c
}

// oneAtATime paces the messages, so that each goes alone rather than in
// a pipelined group that is all in flight at once.
var oneAtATime = throttle.Profile{Name: "test", Connections: 1, Rate: 1000}

// gate holds the server's reply to the body of message n until released,
// so a test knows a message is in flight.
type gate struct {
	n        int
	inFlight chan struct{}
	release  chan struct{}
}

func newGate(n int) *gate {
	return &gate{n: n, inFlight: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) faults(ev smtptest.Event) *smtptest.Fault {
	if ev.Step == "body" && ev.Count == g.n {
		close(g.inFlight)
		<-g.release
	}
	return nil
}

const fiveRecipients = "email,first_name\na@example.org,A\nb@example.org,B\nc@example.org,C\nd@example.org,D\ne@example.org,E\n"

// A web handler pauses a campaign while Run goes on in another goroutine:
// the message in flight is finished and recorded, nothing else is sent,
// the run ends as paused, and resuming sends each of the others once.
func TestPauseFromAnotherGoroutineWhileRunning(t *testing.T) {
	g := newGate(2)
	srv := smtptest.Start(t, smtptest.Options{Faults: g.faults})
	svc, rt, c := newRelayCampaign(t, srv, fiveRecipients)
	ctx := context.Background()

	var (
		mu      sync.Mutex
		watched []Progress
	)
	stop := svc.Watch(c.ID, func(p Progress) {
		mu.Lock()
		watched = append(watched, p)
		mu.Unlock()
	})
	type ended struct {
		res *Result
		err error
	}
	done := make(chan ended, 1)
	go func() {
		res, err := svc.Run(ctx, c, RunOptions{Relays: rt.Relays, Profile: oneAtATime})
		done <- ended{res, err}
	}()
	<-g.inFlight // the second message's body is at the server
	if err := svc.Pause(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	e := <-done
	stop()
	if e.err != nil {
		t.Fatal(e.err)
	}
	if e.res.Stop != StopPaused || e.res.Reason != ReasonPaused {
		t.Errorf("run ended %q (%q), want paused by the user", e.res.Stop, e.res.Reason)
	}
	stored, err := svc.Store().Campaign(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != store.CampaignPaused || stored.StatusReason != ReasonPaused {
		t.Errorf("stored status %s (%s), want paused", stored.Status, stored.StatusReason)
	}
	n := e.res.Counts.ByState
	if got := len(srv.Messages()); got != 2 || n[queue.Delivered] != 2 || n[queue.Pending] != 3 || n[queue.Sending] != 0 {
		t.Errorf("server got %d messages; stored %v; want the 2 sent delivered and 3 pending", got, n)
	}
	mu.Lock()
	last := watched[len(watched)-1]
	mu.Unlock()
	if last.CampaignID != c.ID || last.Delivered != 2 || last.Total != 5 {
		t.Errorf("last progress watched %+v, want campaign %d with 2 of 5 delivered", last, c.ID)
	}

	// Resume: the three others, once each.
	res, err := svc.Resume(ctx, c.ID, RunOptions{Relays: rt.Relays, Profile: oneAtATime})
	if err != nil || res.Stop != StopDone {
		t.Fatalf("resume: %v %v", res, err)
	}
	var to []string
	for _, m := range srv.Messages() {
		to = append(to, m.Rcpts...)
	}
	slices.Sort(to)
	if want := []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org"}; !slices.Equal(to, want) {
		t.Errorf("recipients %v, want each of %v once", to, want)
	}
}

// Cancel from another goroutine ends the run as cancelled once the
// message in flight is recorded; a cancelled campaign does not run again.
func TestCancelFromAnotherGoroutineWhileRunning(t *testing.T) {
	g := newGate(1)
	srv := smtptest.Start(t, smtptest.Options{Faults: g.faults})
	svc, rt, c := newRelayCampaign(t, srv, fiveRecipients)
	ctx := context.Background()
	done := make(chan *Result, 1)
	go func() {
		res, err := svc.Run(ctx, c, RunOptions{Relays: rt.Relays, Profile: oneAtATime})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-g.inFlight
	if err := svc.Cancel(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	res := <-done
	if res == nil || res.Stop != StopCancelled {
		t.Fatalf("run ended %+v, want cancelled", res)
	}
	if got := len(srv.Messages()); got != 1 || res.Counts.ByState[queue.Delivered] != 1 {
		t.Errorf("server got %d messages, stored %v; want the one in flight delivered", got, res.Counts.ByState)
	}
	stored, _ := svc.Store().Campaign(ctx, c.ID)
	if stored.Status != store.CampaignCancelled {
		t.Errorf("stored status %s, want cancelled", stored.Status)
	}
	if _, err := svc.Run(ctx, stored, RunOptions{Relays: rt.Relays}); !errors.Is(err, ErrCancelled) {
		t.Errorf("run of a cancelled campaign: %v, want ErrCancelled", err)
	}
	if err := svc.Pause(ctx, c.ID); !errors.Is(err, ErrFinal) {
		t.Errorf("pause of a cancelled campaign: %v, want ErrFinal", err)
	}
}

// Create reports rejected rows through its callback and stores nothing
// when no row is valid.
func TestCreateReportsRejectedRowsAndStoresNothingWithoutRecipients(t *testing.T) {
	ctx := context.Background()
	svc, err := Open(ctx, filepath.Join(t.TempDir(), "mailout.db"), true, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	rt, err := RouteConfig{}.Check(route.Sandbox, Env{})
	if err != nil {
		t.Fatal(err)
	}
	draft, err := NewCampaign{Name: "c", Routing: rt, Message: &store.Message{Template: []byte(testMessage)}}.Check(Env{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	rejected := func(e recipient.RowError) { lines = append(lines, e.Line) }
	list := "email,first_name\nnot-an-address,A\na@example.org,B\na@example.org,C\n"
	c, n, err := svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader(list), recipient.Options{}, nil), rejected)
	if err != nil || n != 1 || c.Route != route.Sandbox || !slices.Equal(lines, []int{2, 4}) {
		t.Fatalf("Create: %d imported, rejected lines %v, route %q, %v", n, lines, c.Route, err)
	}

	_, _, err = svc.Create(ctx, draft.renamed("empty"), recipient.Rows(ctx, strings.NewReader("email\nnope\n"), recipient.Options{}, nil), nil)
	if !errors.Is(err, ErrNoRecipients) {
		t.Fatalf("a list without a valid row: %v, want ErrNoRecipients", err)
	}
	if _, err := svc.Campaign(ctx, "empty"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a campaign without recipients was stored: %v", err)
	}
}

func (d *Draft) renamed(name string) *Draft {
	c := *d
	c.nc.Name = name
	return &c
}

// The route is stored once, in the campaign's route column; a database
// written before, whose column may be empty, keeps the route of its
// settings' JSON, and a campaign that names none is a sandbox.
func TestSettingsOfReadsTheRouteFromOneSource(t *testing.T) {
	for _, tc := range []struct {
		name   string
		column route.Route
		json   string
		want   route.Route
	}{
		{"column", route.Direct, `{"message_id_salt":"x"}`, route.Direct},
		{"column wins", route.Relay, `{"route":"direct"}`, route.Relay},
		{"old database", "", `{"route":"direct","dns":["127.0.0.1"]}`, route.Direct},
		{"nothing stored", "", ``, route.Sandbox},
	} {
		s, err := SettingsOf(&store.Campaign{Route: tc.column, RouteConfig: []byte(tc.json)})
		if err != nil || s.Route != tc.want {
			t.Errorf("%s: route %q, %v; want %q", tc.name, s.Route, err, tc.want)
		}
	}
	enc := (&Settings{Route: route.Direct, HELO: "h.example"}).Encode()
	if strings.Contains(string(enc), `"route"`) {
		t.Errorf("the settings' JSON stores the route again: %s", enc)
	}
}
