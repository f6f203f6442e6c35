package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"mailout/internal/account"
	"mailout/internal/api"
	"mailout/internal/campaign"
	"mailout/internal/queue"
	"mailout/internal/secret"
	"mailout/internal/setting"
	"mailout/internal/smtptest"
	"mailout/internal/store"
)

func sandboxCampaign(name, csv string) map[string]any {
	return map[string]any{"name": name, "recipients_csv": csv, "message": testMessage,
		"route": map[string]any{"kind": "sandbox"}}
}

// A whole campaign over HTTP only: created from CSV text with one bad row
// (reported with its line), started, followed until done, and every
// recipient delivered (the sandbox keeps the messages).
func TestCampaignOverHTTP(t *testing.T) {
	e := newEnv(t, api.Config{})
	csv := "email,first_name\nana@example.org,Ana\nnot-an-address,Bad\nbo@example.net,Bo\ncy@example.com,Cy\n"
	r := e.do("POST", "/api/v1/campaigns", sandboxCampaign("spring", csv))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created api.Created
	r.into(t, &created)
	if created.Imported != 3 || created.RejectedCount != 1 || len(created.Rejected) != 1 || created.Rejected[0].Line != 3 ||
		!strings.Contains(created.Rejected[0].Reason, "invalid address") {
		t.Fatalf("created: %s", r.body)
	}
	if created.Status != "running" || created.Route != "sandbox" || created.Counts.Pending != 3 {
		t.Fatalf("created: %s", r.body)
	}
	path := fmt.Sprintf("/api/v1/campaigns/%d", created.ID)
	if r := e.do("POST", path+"/start", nil); r.status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	c := e.until(path, func(c *api.Campaign) bool { return c.Status == "done" && !c.Running })
	if c.Counts.Total != 3 || c.Counts.Delivered != 3 || c.Counts.Failed != 0 {
		t.Fatalf("done: %+v", c.Counts)
	}
	var page struct {
		Recipients []api.Recipient `json:"recipients"`
		NextAfter  int64           `json:"next_after"`
	}
	e.do("GET", path+"/recipients", nil).into(t, &page)
	got := []string{}
	for _, rc := range page.Recipients {
		if rc.State != "delivered" || rc.Via != "sandbox" || rc.DeliveredAt == nil {
			t.Errorf("recipient %+v", rc)
		}
		got = append(got, rc.Email)
	}
	if strings.Join(got, " ") != "ana@example.org bo@example.net cy@example.com" || page.NextAfter != 0 {
		t.Fatalf("recipients %v, next_after %d", got, page.NextAfter)
	}
	var list struct {
		Campaigns []api.Campaign `json:"campaigns"`
	}
	e.do("GET", "/api/v1/campaigns", nil).into(t, &list)
	if len(list.Campaigns) != 1 || list.Campaigns[0].Name != "spring" || list.Campaigns[0].Counts.Delivered != 3 {
		t.Fatalf("campaigns: %+v", list.Campaigns)
	}
}

// The whole way from a list over HTTP only: a list is created, a CSV
// with a bad row imported (the row reported with its line), a campaign
// made from the list, started and followed until done, and every
// subscriber delivered (the sandbox keeps the messages).
func TestListCampaignOverHTTP(t *testing.T) {
	e := newEnv(t, api.Config{})
	var l api.List
	if r := e.do("POST", "/api/v1/lists", map[string]any{"name": "newsletter"}); r.status != http.StatusCreated {
		t.Fatalf("create list: %d %s", r.status, r.body)
	} else {
		r.into(t, &l)
	}
	csv := "email,first_name\nana@example.org,Ana\nnot-an-address,Bad\nbo@example.net,Bo\ncy@example.com,Cy\n"
	r := e.send("POST", fmt.Sprintf("/api/v1/lists/%d/import", l.ID), csv, "text/csv", "Bearer "+e.token)
	var imp api.Imported
	r.into(t, &imp)
	if r.status != http.StatusOK || imp.Imported != 3 || len(imp.Rejected) != 1 || imp.Rejected[0].Line != 3 ||
		!strings.Contains(imp.Rejected[0].Reason, "invalid address") {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/api/v1/campaigns", map[string]any{"name": "monthly", "list_id": l.ID, "message": testMessage,
		"route": map[string]any{"kind": "sandbox"}})
	if r.status != http.StatusCreated {
		t.Fatalf("create campaign: %d %s", r.status, r.body)
	}
	var created api.Created
	r.into(t, &created)
	if created.Imported != 3 || created.RejectedCount != 0 || created.Counts.Pending != 3 {
		t.Fatalf("created: %s", r.body)
	}
	path := fmt.Sprintf("/api/v1/campaigns/%d", created.ID)
	if r := e.do("POST", path+"/start", nil); r.status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	c := e.until(path, func(c *api.Campaign) bool { return c.Status == "done" && !c.Running })
	if c.Counts.Total != 3 || c.Counts.Delivered != 3 || c.Counts.Failed != 0 {
		t.Fatalf("done: %+v", c.Counts)
	}
	var page struct {
		Recipients []api.Recipient `json:"recipients"`
	}
	e.do("GET", path+"/recipients", nil).into(t, &page)
	got := []string{}
	for _, rc := range page.Recipients {
		if rc.State != "delivered" || rc.Via != "sandbox" || rc.Fields["first_name"] == "" {
			t.Errorf("recipient %+v", rc)
		}
		got = append(got, rc.Email)
	}
	if strings.Join(got, " ") != "ana@example.org bo@example.net cy@example.com" {
		t.Fatalf("recipients %v", got)
	}
}

// Tokens are the accounts service's: one created as mailout token create
// does is accepted, and once deleted it is refused.
func TestTokenFromTheAccountsService(t *testing.T) {
	e := newEnv(t, api.Config{})
	accounts := account.New(e.svc.Store(), account.Options{})
	tok, err := accounts.CreateToken(context.Background(), "script")
	if err != nil {
		t.Fatal(err)
	}
	if r := e.send("GET", "/api/v1/campaigns", nil, "", "Bearer "+tok); r.status != http.StatusOK {
		t.Fatalf("new token: %d %s", r.status, r.body)
	}
	if err := accounts.DeleteToken(context.Background(), "script"); err != nil {
		t.Fatal(err)
	}
	e.send("GET", "/api/v1/campaigns", nil, "", "Bearer "+tok).wantError(t, http.StatusUnauthorized, "unauthorized")
	// The other token is unaffected.
	if r := e.do("GET", "/api/v1/campaigns", nil); r.status != http.StatusOK {
		t.Fatalf("other token: %d %s", r.status, r.body)
	}
}

// Without a valid token nothing is answered but 401, with the Bearer
// challenge: not a route, not whether a path exists.
func TestEveryRouteNeedsAToken(t *testing.T) {
	e := newEnv(t, api.Config{})
	paths := []struct{ method, path string }{
		{"GET", "/api/v1/campaigns"}, {"POST", "/api/v1/campaigns"}, {"GET", "/api/v1/campaigns/1"},
		{"POST", "/api/v1/campaigns/1/start"}, {"GET", "/api/v1/lists"}, {"GET", "/api/v1/no-such-route"},
	}
	for _, p := range paths {
		for _, auth := range []string{"", "Bearer wrong-token", "Basic " + e.token, "Bearer"} {
			r := e.send(p.method, p.path, nil, "", auth)
			r.wantError(t, http.StatusUnauthorized, "unauthorized")
			if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") {
				t.Errorf("%s %s with %q: WWW-Authenticate %q", p.method, p.path, auth, ch)
			}
		}
	}
	// The scheme is case-insensitive (RFC 7235 §2.1).
	if r := e.send("GET", "/api/v1/campaigns", nil, "", "bearer "+e.token); r.status != http.StatusOK {
		t.Fatalf("lower-case scheme: %d %s", r.status, r.body)
	}
}

// Errors are JSON with stable codes and the right status.
func TestErrors(t *testing.T) {
	e := newEnv(t, api.Config{Limits: api.Limits{Body: 4096, Message: 1024}})
	e.do("GET", "/api/v1/campaigns/99", nil).wantError(t, http.StatusNotFound, "not-found")
	e.do("GET", "/api/v1/campaigns/abc", nil).wantError(t, http.StatusNotFound, "not-found")
	e.do("GET", "/api/v1/nothing-here", nil).wantError(t, http.StatusNotFound, "not-found")
	r := e.do("DELETE", "/api/v1/campaigns", nil)
	r.wantError(t, http.StatusMethodNotAllowed, "method-not-allowed")
	if allow := r.header.Get("Allow"); allow != "GET, POST" {
		t.Errorf("Allow %q", allow)
	}
	e.send("POST", "/api/v1/campaigns", `{"name":"x"}`, "text/plain", "Bearer "+e.token).
		wantError(t, http.StatusUnsupportedMediaType, "unsupported-media-type")
	e.send("POST", "/api/v1/campaigns", `{"name":`, "application/json", "Bearer "+e.token).
		wantError(t, http.StatusBadRequest, "bad-request")
	bad := e.do("POST", "/api/v1/campaigns", map[string]any{"name": "x", "nmae": "typo"}).wantError(t, http.StatusBadRequest, "bad-request")
	if !strings.Contains(bad.Error.Message, "nmae") {
		t.Errorf("unknown field not named: %q", bad.Error.Message)
	}

	// Over the body cap: refused, naming the cap.
	big := e.do("POST", "/api/v1/campaigns", sandboxCampaign("big", "email\n"+strings.Repeat("a@example.org\n", 400)))
	if e := big.wantError(t, http.StatusRequestEntityTooLarge, "too-large"); !strings.Contains(e.Error.Message, "4 KiB") {
		t.Errorf("cap not named: %q", e.Error.Message)
	}
	// A message over the message cap, likewise.
	long := sandboxCampaign("long", "email,first_name\na@example.org,A\n")
	long["message"] = testMessage + strings.Repeat("x", 1100)
	if e := e.do("POST", "/api/v1/campaigns", long).wantError(t, http.StatusRequestEntityTooLarge, "too-large"); !strings.Contains(e.Error.Message, "1 KiB") {
		t.Errorf("cap not named: %q", e.Error.Message)
	}

	// The checks of the command line: route, message, list.
	noRoute := sandboxCampaign("r", "email,first_name\na@example.org,A\n")
	noRoute["route"] = map[string]any{"kind": "carrier-pigeon"}
	if e := e.do("POST", "/api/v1/campaigns", noRoute).wantError(t, http.StatusBadRequest, "bad-request"); e.Error.Field != "route.kind" {
		t.Errorf("field %q", e.Error.Field)
	}
	noFrom := sandboxCampaign("m", "email,first_name\na@example.org,A\n")
	noFrom["message"] = "Subject: no sender\n\nhello\n"
	if e := e.do("POST", "/api/v1/campaigns", noFrom).wantError(t, http.StatusBadRequest, "bad-request"); e.Error.Field != "message" {
		t.Errorf("field %q", e.Error.Field)
	}
	none := e.do("POST", "/api/v1/campaigns", sandboxCampaign("n", "email\nnope\n")).wantError(t, http.StatusBadRequest, "bad-request")
	if len(none.Error.Rejected) != 1 || none.Error.Rejected[0].Line != 2 {
		t.Errorf("rejected rows not reported: %+v", none.Error)
	}

	if r := e.do("POST", "/api/v1/campaigns", sandboxCampaign("dup", "email,first_name\na@example.org,A\n")); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	e.do("POST", "/api/v1/campaigns", sandboxCampaign("dup", "email,first_name\na@example.org,A\n")).wantError(t, http.StatusConflict, "conflict")
	// Nothing was stored by the refused requests.
	var list struct {
		Campaigns []api.Campaign `json:"campaigns"`
	}
	e.do("GET", "/api/v1/campaigns", nil).into(t, &list)
	if len(list.Campaigns) != 1 {
		t.Fatalf("%d campaigns stored, want 1", len(list.Campaigns))
	}
}

// Pause and cancel change the status at once; a cancelled campaign does
// not start again, and a final one cannot be paused.
func TestPauseCancelStart(t *testing.T) {
	e := newEnv(t, api.Config{})
	var c api.Created
	e.do("POST", "/api/v1/campaigns", sandboxCampaign("c", "email,first_name\na@example.org,A\nb@example.org,B\n")).into(t, &c)
	path := fmt.Sprintf("/api/v1/campaigns/%d", c.ID)
	var v api.Campaign
	e.do("POST", path+"/pause", nil).into(t, &v)
	if v.Status != "paused" || v.StatusReason != "paused by the user" {
		t.Fatalf("paused: %+v", v)
	}
	e.do("POST", path+"/cancel", nil).into(t, &v)
	if v.Status != "cancelled" {
		t.Fatalf("cancelled: %+v", v)
	}
	e.do("POST", path+"/start", nil).wantError(t, http.StatusConflict, "conflict")
	e.do("POST", path+"/resume", nil).wantError(t, http.StatusConflict, "conflict")
	e.do("POST", path+"/pause", nil).wantError(t, http.StatusConflict, "conflict")
	e.do("POST", "/api/v1/campaigns/42/pause", nil).wantError(t, http.StatusNotFound, "not-found")
}

// The relay route with a password: the password reaches the relay (AUTH)
// and is never stored nor sent back; failures are listed by class and
// filtered, pages follow by id, and a requeue sends them again.
func TestRelayPasswordRecipientsAndRequeue(t *testing.T) {
	const password = "s3cret-Pa55word!"
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"shop": password}, RequireAuth: true, LocalPartFaults: true})
	host, port, _ := strings.Cut(srv.Addr, ":")
	var portN int
	fmt.Sscan(port, &portN)
	e := newEnv(t, api.Config{})
	csv := "email,first_name\na@example.org,A\nreject@example.org,R\nb@example.org,B\nc@example.org,C\nd@example.org,D\n"
	req := sandboxCampaign("relayed", csv)
	req["route"] = map[string]any{"kind": "relay", "helo": "sender.mailout.test",
		"relay": map[string]any{"host": host, "port": portN, "tls": "none", "user": "shop", "password": password}}
	req["profile"] = map[string]any{"connections": 1, "rate": 0}
	r := e.do("POST", "/api/v1/campaigns", req)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), password) {
		t.Fatalf("the password is echoed: %s", r.body)
	}
	var c api.Created
	r.into(t, &c)
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "clear text") {
		t.Errorf("warnings %q", c.Warnings)
	}
	stored, err := e.svc.Store().Campaign(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored.RouteConfig), password) {
		t.Fatalf("the password is stored: %s", stored.RouteConfig)
	}
	path := fmt.Sprintf("/api/v1/campaigns/%d", c.ID)
	if r := e.do("POST", path+"/start", nil); r.status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	done := e.until(path, func(c *api.Campaign) bool { return c.Status == "done" && !c.Running })
	if done.Counts.Delivered != 4 || done.Counts.Failed != 1 || done.Counts.FailedByClass["content-rejected"] != 1 {
		t.Fatalf("counts %+v", done.Counts)
	}
	for _, m := range srv.Messages() {
		if m.AuthUser != "shop" {
			t.Errorf("message sent without AUTH: %+v", m)
		}
	}
	if strings.Contains(string(e.do("GET", path, nil).body), password) {
		t.Fatal("the password is shown")
	}

	var failed struct {
		Recipients []api.Recipient `json:"recipients"`
	}
	e.do("GET", path+"/recipients?state=failed&class=content-rejected", nil).into(t, &failed)
	if len(failed.Recipients) != 1 || failed.Recipients[0].Email != "reject@example.org" || failed.Recipients[0].Code != 554 {
		t.Fatalf("failed: %+v", failed.Recipients)
	}
	// Keyset pages of two: every recipient once, in id order.
	var emails []string
	after := int64(0)
	for pages := 0; ; pages++ {
		var p struct {
			Recipients []api.Recipient `json:"recipients"`
			NextAfter  int64           `json:"next_after"`
		}
		e.do("GET", fmt.Sprintf("%s/recipients?limit=2&after=%d", path, after), nil).into(t, &p)
		for _, rc := range p.Recipients {
			emails = append(emails, rc.Email)
		}
		if p.NextAfter == 0 {
			break
		}
		after = p.NextAfter
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if strings.Join(emails, " ") != "a@example.org reject@example.org b@example.org c@example.org d@example.org" {
		t.Fatalf("pages: %v", emails)
	}
	e.do("GET", path+"/recipients?state=lost", nil).wantError(t, http.StatusBadRequest, "bad-request")
	e.do("GET", path+"/recipients?limit=0", nil).wantError(t, http.StatusBadRequest, "bad-request")

	e.do("POST", path+"/requeue", map[string]any{"classes": []string{"no-such-class"}}).wantError(t, http.StatusBadRequest, "bad-request")
	var rq struct {
		Requeued int `json:"requeued"`
	}
	e.do("POST", path+"/requeue", map[string]any{"classes": []string{"content-rejected"}}).into(t, &rq)
	if rq.Requeued != 1 {
		t.Fatalf("requeued %d", rq.Requeued)
	}
	var after1 api.Campaign
	e.do("GET", path, nil).into(t, &after1)
	if after1.Counts.Pending != 1 || after1.Counts.Failed != 0 {
		t.Fatalf("after requeue: %+v", after1.Counts)
	}
}

// A campaign the route's fault pauses (the relay wants AUTH and none is
// given) shows why: paused, its reason, and the doctor's diagnosis.
func TestPausedByTheRouteShowsTheDiagnosis(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"u": "p"}, RequireAuth: true})
	host, port, _ := strings.Cut(srv.Addr, ":")
	var portN int
	fmt.Sscan(port, &portN)
	e := newEnv(t, api.Config{})
	req := sandboxCampaign("locked", "email,first_name\na@example.org,A\nb@example.org,B\n")
	req["route"] = map[string]any{"kind": "relay", "helo": "sender.mailout.test",
		"relay": map[string]any{"host": host, "port": portN, "tls": "none"}}
	var c api.Created
	r := e.do("POST", "/api/v1/campaigns", req)
	r.into(t, &c)
	path := fmt.Sprintf("/api/v1/campaigns/%d", c.ID)
	if r := e.do("POST", path+"/start", nil); r.status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	got := e.until(path, func(c *api.Campaign) bool { return c.Status == "paused" && !c.Running })
	if got.StatusReason == "" || len(got.Diagnosis) == 0 || got.Counts.Failed != 0 {
		t.Fatalf("paused without a diagnosis: %+v", got)
	}
	var diag map[string]any
	if err := json.Unmarshal(got.Diagnosis, &diag); err != nil || len(diag) == 0 {
		t.Fatalf("diagnosis %s: %v", got.Diagnosis, err)
	}
}

// relayCampaign is a new campaign's body on the relay route to srv.
func relayCampaign(name, csv string, srv *smtptest.Server, user, password string) map[string]any {
	host, port, _ := strings.Cut(srv.Addr, ":")
	var portN int
	fmt.Sscan(port, &portN)
	req := sandboxCampaign(name, csv)
	relay := map[string]any{"host": host, "port": portN, "tls": "none"}
	if user != "" {
		relay["user"], relay["password"] = user, password
	}
	req["route"] = map[string]any{"kind": "relay", "helo": "sender.mailout.test", "relay": relay}
	// Paced, so that each message goes alone rather than in a pipelined
	// group that is all in flight at once.
	req["profile"] = map[string]any{"connections": 1, "rate": 1000}
	return req
}

// Pause while the campaign is sending: the message in flight is finished
// and recorded, the run ends, the campaign shows paused by the user, and
// resume sends the rest.
func TestPauseWhileSendingThenResume(t *testing.T) {
	inFlight, release := make(chan struct{}), make(chan struct{})
	srv := smtptest.Start(t, smtptest.Options{Faults: func(ev smtptest.Event) *smtptest.Fault {
		if ev.Step == "body" && ev.Count == 1 {
			close(inFlight)
			<-release
		}
		return nil
	}})
	e := newEnv(t, api.Config{})
	var c api.Created
	e.do("POST", "/api/v1/campaigns", relayCampaign("paused", fiveRows, srv, "", "")).into(t, &c)
	path := fmt.Sprintf("/api/v1/campaigns/%d", c.ID)
	e.do("POST", path+"/start", nil)
	<-inFlight
	var v api.Campaign
	e.do("POST", path+"/pause", nil).into(t, &v)
	if v.Status != "paused" {
		t.Fatalf("pause: %+v", v)
	}
	close(release)
	got := e.until(path, func(c *api.Campaign) bool { return !c.Running })
	if got.Status != "paused" || got.StatusReason != "paused by the user" || got.Counts.Delivered != 1 || got.Counts.Pending != 4 || len(got.Diagnosis) != 0 {
		t.Fatalf("after pause: %+v %+v", got, got.Counts)
	}
	if r := e.do("POST", path+"/resume", nil); r.status != http.StatusAccepted {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}
	done := e.until(path, func(c *api.Campaign) bool { return c.Status == "done" && !c.Running })
	if done.Counts.Delivered != 5 || len(srv.Messages()) != 5 {
		t.Fatalf("after resume: %+v, %d messages", done.Counts, len(srv.Messages()))
	}
}

const fiveRows = "email,first_name\na@example.org,A\nb@example.org,B\nc@example.org,C\nd@example.org,D\ne@example.org,E\n"

// The relay password lives in the server's memory only: a server started
// again over the same database refuses to start the campaign (409) rather
// than send without it.
func TestRelayPasswordIsNotKeptAcrossRestarts(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"shop": "pw-123456"}, RequireAuth: true})
	e := newEnv(t, api.Config{})
	var c api.Created
	e.do("POST", "/api/v1/campaigns", relayCampaign("restart", fiveRows, srv, "shop", "pw-123456")).into(t, &c)

	// The same database, a new server.
	again := e.restart(nil)
	again.do("POST", fmt.Sprintf("/api/v1/campaigns/%d/start", c.ID), nil).wantError(t, http.StatusConflict, "conflict")
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages sent without the password", n)
	}
}

// A campaign another mailout process is sending (it holds the campaign's
// lock) is not started again: 409 at once, nothing sent twice.
func TestStartWhileAnotherProcessSends(t *testing.T) {
	e := newEnv(t, api.Config{})
	var c api.Created
	e.do("POST", "/api/v1/campaigns", sandboxCampaign("busy", fiveRows)).into(t, &c)
	unlock, err := campaign.FileLock(fmt.Sprintf("%s.campaign-%d.lock", e.db, c.ID))
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/campaigns/%d", c.ID)
	e.do("POST", path+"/start", nil).wantError(t, http.StatusConflict, "conflict")
	unlock()
	if r := e.do("POST", path+"/start", nil); r.status != http.StatusAccepted {
		t.Fatalf("start once the lock is free: %d %s", r.status, r.body)
	}
	e.until(path, func(c *api.Campaign) bool { return c.Status == "done" && !c.Running })
}

// A relay account stored in the app's settings: the campaign keeps only
// the account's name, and a new server over the same database (a
// restart: no password in its memory) sends with the password read from
// the sealed settings. Without the secret key it refuses to start rather
// than send without the password.
func TestStoredRelayAccountAcrossRestarts(t *testing.T) {
	const password = "stored-Pa55word!"
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"shop": password}, RequireAuth: true})
	key, err := secret.NewKey(secret.Generate())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, api.Config{SecretKey: key})
	host, port, _ := strings.Cut(srv.Addr, ":")
	var portN int
	fmt.Sscan(port, &portN)
	ctx := context.Background()
	if err := setting.Save(ctx, e.svc.Store(), key, &setting.Settings{HELO: "sender.mailout.test", Relays: []setting.RelayAccount{
		{Name: "shop-relay", Host: host, Port: portN, TLS: setting.TLSNone, User: "shop", Password: password},
	}}); err != nil {
		t.Fatal(err)
	}
	req := sandboxCampaign("stored", fiveRows)
	req["route"] = map[string]any{"kind": "relay", "account": "shop-relay"}
	req["profile"] = map[string]any{"connections": 1, "rate": 0}

	unknown := sandboxCampaign("unknown", fiveRows)
	unknown["route"] = map[string]any{"kind": "relay", "account": "no-such-account"}
	if er := e.do("POST", "/api/v1/campaigns", unknown).wantError(t, http.StatusBadRequest, "bad-request"); er.Error.Field != "route.account" {
		t.Errorf("field %q", er.Error.Field)
	}

	r := e.do("POST", "/api/v1/campaigns", req)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), password) {
		t.Fatalf("the password is echoed: %s", r.body)
	}
	var c api.Created
	r.into(t, &c)
	stored, err := e.svc.Store().Campaign(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored.RouteConfig), password) || !strings.Contains(string(stored.RouteConfig), `"shop-relay"`) {
		t.Fatalf("stored route %s: want the account's name and not its password", stored.RouteConfig)
	}
	path := fmt.Sprintf("/api/v1/campaigns/%d", c.ID)

	// A server without the secret key cannot read the password: 409,
	// nothing sent.
	e.restart(func(c *api.Config) { c.SecretKey = nil }).do("POST", path+"/start", nil).wantError(t, http.StatusConflict, "conflict")
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages sent without the password", n)
	}

	// A server with the key: every message goes out, signed in.
	again := e.restart(nil)
	if r := again.do("POST", path+"/start", nil); r.status != http.StatusAccepted {
		t.Fatalf("start after the restart: %d %s", r.status, r.body)
	}
	done := again.until(path, func(c *api.Campaign) bool { return c.Status == "done" && !c.Running })
	if done.Counts.Delivered != 5 || len(srv.Messages()) != 5 {
		t.Fatalf("after the restart: %+v, %d messages", done.Counts, len(srv.Messages()))
	}
	for _, m := range srv.Messages() {
		if m.AuthUser != "shop" {
			t.Errorf("message to %v sent as %q, want authenticated as shop", m.Rcpts, m.AuthUser)
		}
	}
}

// The direct route's fallback relay may be a stored account; the stored
// campaign names it, without its password.
func TestDirectRouteWithStoredFallbackAccount(t *testing.T) {
	key, err := secret.NewKey(secret.Generate())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, api.Config{SecretKey: key})
	ctx := context.Background()
	if err := setting.Save(ctx, e.svc.Store(), key, &setting.Settings{FallbackAfter: 3, Relays: []setting.RelayAccount{
		{Name: "backup", Host: "127.0.0.1", Port: 2587, TLS: setting.TLSStartTLS, User: "mailout", Password: "fallback-secret"},
	}}); err != nil {
		t.Fatal(err)
	}
	req := sandboxCampaign("hybrid", fiveRows)
	req["route"] = map[string]any{"kind": "direct", "helo": "sender.mailout.test", "dns": []string{"127.0.0.1:5354"}, "fallback_account": "backup"}
	r := e.do("POST", "/api/v1/campaigns", req)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var c api.Created
	r.into(t, &c)
	stored, err := e.svc.Store().Campaign(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	settings, err := campaign.SettingsOf(stored)
	if err != nil {
		t.Fatal(err)
	}
	if c.Route != "direct" || len(settings.Relays) != 1 || settings.RelayPasswordSettings[0] != "backup" || settings.FallbackAfter != 3 ||
		strings.Contains(string(stored.RouteConfig), "fallback-secret") {
		t.Fatalf("stored route %s", stored.RouteConfig)
	}
	req["name"], req["route"] = "wrong", map[string]any{"kind": "direct", "account": "backup"}
	if er := e.do("POST", "/api/v1/campaigns", req).wantError(t, http.StatusBadRequest, "bad-request"); er.Error.Field != "route.account" {
		t.Errorf("field %q", er.Error.Field)
	}
}

// On a fleet's database the API leaves the sending to the workers: start
// stores the campaign as running and sends nothing in this process, and
// a relay password typed in a URL (never stored, so no worker has it) is
// refused rather than left to fail on every worker.
func TestStartOnAFleetLeavesTheSendingToTheWorkers(t *testing.T) {
	e := newEnv(t, api.Config{Fleet: true})
	var c api.Created
	e.do("POST", "/api/v1/campaigns", sandboxCampaign("fleet", fiveRows)).into(t, &c)
	path := fmt.Sprintf("/api/v1/campaigns/%d", c.ID)
	if r := e.do("POST", path+"/start", nil); r.status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	got, err := e.svc.Store().Campaign(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.Store().Counts(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.CampaignRunning || n.ByState[queue.Pending] != 5 {
		t.Fatalf("after start: %s, %v; want running with 5 pending for the workers", got.Status, n.ByState)
	}
	if running, _ := e.svc.Sending(c.ID); running {
		t.Fatal("the API runs the campaign itself")
	}

	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"u": "typed-Pa55"}, RequireAuth: true})
	e.do("POST", "/api/v1/campaigns", relayCampaign("typed", fiveRows, srv, "u", "typed-Pa55")).into(t, &c)
	e.do("POST", fmt.Sprintf("/api/v1/campaigns/%d/start", c.ID), nil).wantError(t, http.StatusConflict, "conflict")
}
