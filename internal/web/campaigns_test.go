package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/doctor"
	"mailout/internal/queue"
	"mailout/internal/report"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

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

func relayTo(srv *smtptest.Server) campaign.RouteConfig {
	return campaign.RouteConfig{Relays: []string{"smtp+insecure://" + srv.Addr}, HELO: "sender.mailout.test"}
}

// Start from the page sends the campaign in this process; its event
// stream reports progress up to the end, with the final counts.
func TestStartStreamsProgressUntilDone(t *testing.T) {
	a := newApp(t)
	a.signIn()
	var list strings.Builder
	list.WriteString("email,first_name\n")
	for i := range 40 {
		list.WriteString("r" + itoa(int64(i)) + "@example.org,R\n")
	}
	c := a.newCampaign("spring", campaign.RouteConfig{}, list.String(), false)
	id := itoa(c.ID)

	_, page := a.get("/campaigns/" + id)
	if !strings.Contains(page, `action="/campaigns/`+id+`/start"`) || !strings.Contains(page, `data-events="/campaigns/`+id+`/events"`) {
		t.Fatal("the page of a new campaign offers no start button or no event stream")
	}
	res := a.post("/campaigns/"+id+"/start", nil, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/campaigns/"+id+"?done=started" {
		t.Fatalf("start: %s to %q", res.Status, res.Header.Get("Location"))
	}
	// A stream that never ends fails the test instead of hanging it.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, a.srv.URL+"/campaigns/"+id+"/events", nil)
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events: %s, content type %q", resp.Status, ct)
	}
	evs := readEvents(t, resp.Body)
	if len(evs) < 2 || evs[len(evs)-1].name != "end" {
		t.Fatalf("events %v, want progress then end", evs)
	}
	var last progressEvent
	if err := json.Unmarshal([]byte(evs[len(evs)-1].data), &last); err != nil {
		t.Fatal(err)
	}
	if last.Status != "done" || last.Delivered != 40 || last.Total != 40 || last.Percent != 100 || last.StatusText != "done" {
		t.Errorf("last event %+v, want done with 40 of 40 delivered", last)
	}
	a.runner.Wait()
	if got := a.campaign(c.ID).Status; got != store.CampaignDone {
		t.Errorf("stored status %s, want done", got)
	}
	// Without script the page shows the same numbers.
	_, page = a.get("/campaigns/" + id)
	if !strings.Contains(page, `data-field="delivered">40<`) || !strings.Contains(page, `value="100"`) {
		t.Error("the page does not show the final counts")
	}
}

// Pause from the page finishes the message in flight and stops; resume
// sends the others, once each; cancel stops for good.
func TestPauseResumeAndCancelFromThePage(t *testing.T) {
	g := newGate(2)
	srv := smtptest.Start(t, smtptest.Options{Faults: g.faults})
	a := newApp(t)
	a.signIn()
	c := a.newCampaign("spring", relayTo(srv), fiveRecipients, false)
	id := itoa(c.ID)
	if res := a.post("/campaigns/"+id+"/start", nil, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %s", res.Status)
	}
	<-g.inFlight
	_, page := a.get("/campaigns/" + id)
	if !strings.Contains(page, `action="/campaigns/`+id+`/pause"`) {
		t.Error("a running campaign's page offers no pause button")
	}
	if res := a.post("/campaigns/"+id+"/pause", nil, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("pause: %s", res.Status)
	}
	close(g.release)
	a.runner.Wait()
	n, _ := a.svc.Store().Counts(context.Background(), c.ID)
	if got := a.campaign(c.ID).Status; got != store.CampaignPaused || len(srv.Messages()) != 2 || n.ByState[queue.Delivered] != 2 || n.ByState[queue.Pending] != 3 {
		t.Fatalf("after pause: status %s, server got %d, stored %v; want paused with 2 delivered and 3 pending", got, len(srv.Messages()), n.ByState)
	}
	_, page = a.get("/campaigns/" + id)
	if !strings.Contains(page, `action="/campaigns/`+id+`/resume"`) || !strings.Contains(page, "paused by the user") {
		t.Error("a paused campaign's page offers no resume button or no reason")
	}
	if res := a.post("/campaigns/"+id+"/resume", nil, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("resume: %s", res.Status)
	}
	a.runner.Wait()
	var to []string
	for _, m := range srv.Messages() {
		to = append(to, m.Rcpts...)
	}
	slices.Sort(to)
	if want := []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org"}; !slices.Equal(to, want) || a.campaign(c.ID).Status != store.CampaignDone {
		t.Errorf("after resume: recipients %v, status %s; want each once and done", to, a.campaign(c.ID).Status)
	}
	// A finished campaign cannot be paused or started again.
	for _, act := range []string{"pause", "start", "cancel"} {
		if res := a.post("/campaigns/"+id+"/"+act, nil, nil); res.StatusCode != http.StatusConflict {
			t.Errorf("%s of a done campaign: %s, want 409", act, res.Status)
		}
	}

	g2 := newGate(1)
	srv2 := smtptest.Start(t, smtptest.Options{Faults: g2.faults})
	c2 := a.newCampaign("summer", relayTo(srv2), fiveRecipients, false)
	id2 := itoa(c2.ID)
	a.post("/campaigns/"+id2+"/start", nil, nil)
	<-g2.inFlight
	if res := a.post("/campaigns/"+id2+"/cancel", nil, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: %s", res.Status)
	}
	close(g2.release)
	a.runner.Wait()
	if got := a.campaign(c2.ID).Status; got != store.CampaignCancelled || len(srv2.Messages()) != 1 {
		t.Errorf("after cancel: status %s, server got %d; want cancelled after the one in flight", got, len(srv2.Messages()))
	}
	if res := a.post("/campaigns/"+id2+"/resume", nil, nil); res.StatusCode != http.StatusConflict {
		t.Errorf("resume of a cancelled campaign: %s, want 409", res.Status)
	}
}

// A campaign sent by another process (mailout send beside the server) is
// shown as sending and can be paused from the page, but not started twice.
func TestCampaignRunningInAnotherProcess(t *testing.T) {
	g := newGate(1)
	srv := smtptest.Start(t, smtptest.Options{Faults: g.faults})
	a := newApp(t)
	a.signIn()
	var list strings.Builder
	list.WriteString("email,first_name\n")
	for i := range 20 {
		list.WriteString("r" + itoa(int64(i)) + "@example.org,R\n")
	}
	c := a.newCampaign("spring", relayTo(srv), list.String(), false)
	id := itoa(c.ID)
	// The other process: a second service on the same database file.
	other, err := campaign.Open(context.Background(), a.dbPath, false, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	done := make(chan *campaign.Result, 1)
	go func() {
		res, err := other.Run(context.Background(), c, campaign.RunOptions{Profile: fivePerSecond})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-g.inFlight
	_, page := a.get("/campaigns/" + id)
	if !strings.Contains(page, "Another process") || strings.Contains(page, `action="/campaigns/`+id+`/start"`) {
		t.Error("the page does not say another process sends the campaign, or offers to start it")
	}
	if res := a.post("/campaigns/"+id+"/start", nil, nil); res.StatusCode != http.StatusConflict {
		t.Errorf("start of a campaign sent elsewhere: %s, want 409", res.Status)
	}
	if res := a.post("/campaigns/"+id+"/pause", nil, nil); res.StatusCode != http.StatusSeeOther || a.campaign(c.ID).Status != store.CampaignPaused {
		t.Errorf("pause of a campaign sent elsewhere: %s, status %s", res.Status, a.campaign(c.ID).Status)
	}
	close(g.release)
	if res := <-done; res == nil || res.Stop != campaign.StopPaused {
		t.Errorf("the other process's run ended %+v, want paused", res)
	}
	if got := len(srv.Messages()); got >= 20 {
		t.Errorf("the server got %d messages, want the other process stopped by the pause", got)
	}
}

// The CSV export is the command line's report, with the log's filters.
func TestExportCSV(t *testing.T) {
	a := newApp(t)
	a.signIn()
	c := a.newCampaign("spring", campaign.RouteConfig{}, fiveRecipients, false)
	if _, err := a.svc.Resume(context.Background(), c.ID, campaign.RunOptions{Profile: sandboxProfile}); err != nil {
		t.Fatal(err)
	}
	res, body := a.get("/campaigns/" + itoa(c.ID) + "/export.csv")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %s %q %q", res.Status, res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"))
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || !slices.Equal(rows[0], report.Columns) || rows[1][1] != "a@example.org" || rows[1][2] != "delivered" {
		t.Errorf("export rows %v, want the header and 5 delivered recipients", rows)
	}
	_, body = a.get("/campaigns/" + itoa(c.ID) + "/export.csv?state=failed")
	if rows, _ := csv.NewReader(strings.NewReader(body)).ReadAll(); len(rows) != 1 {
		t.Errorf("export of failed recipients: %v, want the header only", rows)
	}
	if res, _ := a.get("/campaigns/" + itoa(c.ID) + "/export.csv?state=nope"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown state: %s", res.Status)
	}
}

// Failed recipients are listed by class with the class's advice; "send
// again" for one class requeues only those and sends them.
func TestRequeueFailedByClass(t *testing.T) {
	var reject atomic.Bool
	reject.Store(true)
	srv := smtptest.Start(t, smtptest.Options{Faults: func(ev smtptest.Event) *smtptest.Fault {
		if ev.Step == "rcpt" && strings.HasPrefix(ev.Rcpt, "b@") && reject.Load() {
			return &smtptest.Fault{Code: 550, Enhanced: "5.7.1", Text: "message content rejected as spam"}
		}
		return nil
	}})
	a := newApp(t)
	a.signIn()
	c := a.newCampaign("spring", relayTo(srv), fiveRecipients, false)
	id := itoa(c.ID)
	a.post("/campaigns/"+id+"/start", nil, nil)
	a.runner.Wait()
	n, _ := a.svc.Store().Counts(context.Background(), c.ID)
	if n.ByState[queue.Failed] != 1 {
		t.Fatalf("stored %v, want one failure", n.ByState)
	}
	var class string
	for cl := range n.ByClass {
		class = string(cl)
	}
	_, page := a.get("/campaigns/" + id)
	if !strings.Contains(page, `name="class" value="`+class+`"`) || !strings.Contains(page, "recipients?state=failed&amp;class="+class) {
		t.Fatalf("the page offers no send-again for class %s", class)
	}
	_, log := a.get("/campaigns/" + id + "/recipients?state=failed")
	if !strings.Contains(log, "b@example.org") || strings.Contains(log, "a@example.org") {
		t.Error("the log filtered by state shows the wrong recipients")
	}
	reject.Store(false)
	if res := a.post("/campaigns/"+id+"/requeue", url.Values{"class": {class}}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("requeue: %s", res.Status)
	}
	a.runner.Wait()
	n, _ = a.svc.Store().Counts(context.Background(), c.ID)
	if n.ByState[queue.Delivered] != 5 || a.campaign(c.ID).Status != store.CampaignDone {
		t.Errorf("after send again: %v, status %s; want all 5 delivered", n.ByState, a.campaign(c.ID).Status)
	}
	if res := a.post("/campaigns/"+id+"/requeue", url.Values{"class": {"no-such-class"}}, nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown class: %s", res.Status)
	}
}

// A campaign that paused itself shows the doctor's stored diagnosis:
// verdict, checklist with evidence, advice and the suggested setting, in
// the page's language.
func TestPausedCampaignShowsItsDiagnosis(t *testing.T) {
	a := newApp(t)
	a.signIn()
	c := a.newCampaign("spring", campaign.RouteConfig{Relays: []string{"smtp://u@127.0.0.1:2465"}}, fiveRecipients, false)
	rep := &doctor.Report{Route: route.Relay, Findings: []doctor.Finding{
		{ID: "relay.banner", Subject: "127.0.0.1:2465", Severity: doctor.Fail, Code: "timeout", Evidence: []string{"no banner in 10s"}},
	}, Verdict: doctor.Verdict{ID: doctor.VerdictTLSModeMismatch, Suggest: "smtps://u@127.0.0.1:2465",
		Title:  map[string]string{"en": "TLS mode does not match the port", "es": "El modo TLS no coincide"},
		Advice: map[string]string{"en": "Use implicit TLS.", "es": "Use TLS implícito."}}}
	ctx := context.Background()
	if err := a.svc.Store().SetDiagnosis(ctx, c.ID, rep.JSON()); err != nil {
		t.Fatal(err)
	}
	a.pauseAsBreaker(c.ID)
	_, page := a.get("/campaigns/" + itoa(c.ID))
	for _, want := range []string{"TLS mode does not match the port", "tls-mode-mismatch", "no banner in 10s", "Use implicit TLS.", "smtps://u@127.0.0.1:2465", "FAIL"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	_, page = a.do(http.MethodGet, "/campaigns/"+itoa(c.ID), nil, http.Header{"Accept-Language": {"es"}})
	if !strings.Contains(page, "El modo TLS no coincide") || !strings.Contains(page, "FALLA") {
		t.Error("the diagnosis is not in Spanish on a Spanish page")
	}
}

var fivePerSecond = throttle.Profile{Name: "test", Connections: 1, Rate: 5}

// A campaign paused on a relay's wrong port offers the port the doctor
// found; the button stores it and resumes, and the messages go there.
func TestApplyTheSuggestedFixAndResume(t *testing.T) {
	wrong := smtptest.Start(t, smtptest.Options{})
	right := smtptest.Start(t, smtptest.Options{})
	a := newApp(t)
	a.signIn()
	c := a.newCampaign("spring", relayTo(wrong), fiveRecipients, false)
	id := itoa(c.ID)
	ctx := context.Background()
	if res := a.post("/campaigns/"+id+"/fix", nil, nil); res.StatusCode != http.StatusConflict {
		t.Errorf("fix without a diagnosis: %s, want 409", res.Status)
	}
	rep := &doctor.Report{Route: route.Relay, Verdict: doctor.Verdict{ID: doctor.VerdictRelayWrongPort, Suggest: "smtp+insecure://" + right.Addr,
		Title: map[string]string{"en": "Wrong port"}, Advice: map[string]string{"en": "Use the port that answered."}}}
	if err := a.svc.Store().SetDiagnosis(ctx, c.ID, rep.JSON()); err != nil {
		t.Fatal(err)
	}
	a.pauseAsBreaker(c.ID)
	_, page := a.get("/campaigns/" + id)
	if !strings.Contains(page, `action="/campaigns/`+id+`/fix"`) || !strings.Contains(html.UnescapeString(page), "smtp+insecure://"+right.Addr) {
		t.Fatal("the page offers no button to apply the suggested relay")
	}
	res := a.post("/campaigns/"+id+"/fix", nil, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/campaigns/"+id+"?done=fixed" {
		t.Fatalf("fix: %s to %q", res.Status, res.Header.Get("Location"))
	}
	a.runner.Wait()
	if len(right.Messages()) != 5 || len(wrong.Messages()) != 0 || a.campaign(c.ID).Status != store.CampaignDone {
		t.Errorf("after the fix: right server %d, wrong %d, status %s; want all 5 sent to the suggested relay",
			len(right.Messages()), len(wrong.Messages()), a.campaign(c.ID).Status)
	}
}
