package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"mailout/internal/campaign"
	"mailout/internal/metrics"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

const message = "From: Shop <news@example.com>\nSubject: Hello\n\nHello {{.email}}\n"

var oneAtATime = throttle.Profile{Name: "test", Connections: 1}

// create stores a relay campaign to srv of list.
func create(t *testing.T, svc *campaign.Service, srv *smtptest.Server, name, list string) *store.Campaign {
	t.Helper()
	ctx := context.Background()
	rt, err := campaign.RouteConfig{Relays: []string{"smtp+insecure://" + srv.Addr}, HELO: "sender.mailout.test"}.Check(route.Sandbox, campaign.Env{})
	if err != nil {
		t.Fatal(err)
	}
	draft, err := campaign.NewCampaign{Name: name, Routing: rt, MaxAge: 3600e9, RetryMin: 60e9, Profile: oneAtATime,
		Message: &store.Message{Template: []byte(message), TemplateName: "message.txt"}}.Check(campaign.Env{})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader(list), recipient.Options{}, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serve opens a campaign service on a new database and serves its
// metrics over loopback; both end with the test.
func serve(t *testing.T) (*campaign.Service, *httptest.Server) {
	t.Helper()
	svc, err := campaign.Open(context.Background(), filepath.Join(t.TempDir(), "mailout.db"), true, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	m := metrics.New(svc)
	t.Cleanup(m.Close)
	web := httptest.NewServer(m.Handler())
	t.Cleanup(web.Close)
	return svc, web
}

// scrape GETs /metrics over loopback and parses the text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value is the metric of fam whose labels are labels (name, value pairs).
func value(t *testing.T, fams map[string]*dto.MetricFamily, fam string, labels ...string) *dto.Metric {
	t.Helper()
	f := fams[fam]
	if f == nil {
		t.Fatalf("no family %s", fam)
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return m
	}
	t.Fatalf("%s%v: not found", fam, labels)
	return nil
}

// The metrics a scrape shows after real runs over loopback SMTP: messages
// by class and route, the queue by state, the send rate, the reply
// latency (a server a second slow shows in the buckets) and a trip of the
// breaker.
func TestMetricsOfRealRuns(t *testing.T) {
	ctx := context.Background()
	svc, web := serve(t)

	srv := smtptest.Start(t, smtptest.Options{LocalPartFaults: true})
	c := create(t, svc, srv, "spring", "email\nslow@example.org\nunknown@example.org\nok@example.org\n")
	fams := scrape(t, web.URL)
	if v := value(t, fams, "mailout_queue_recipients", "state", "pending").GetGauge().GetValue(); v != 3 {
		t.Fatalf("queue pending %v before the run, want 3", v)
	}
	if _, err := svc.Run(ctx, c, campaign.RunOptions{Profile: oneAtATime}); err != nil {
		t.Fatal(err)
	}
	// A relay that wants AUTH: nothing gets out, the breaker pauses.
	locked := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"u": "p"}, RequireAuth: true})
	c2 := create(t, svc, locked, "locked", "email\na@example.org\nb@example.org\n")
	if res, err := svc.Run(ctx, c2, campaign.RunOptions{Profile: oneAtATime, NoDiagnosis: true}); err != nil || res.Stop != campaign.StopPaused {
		t.Fatalf("locked run: %v", err)
	}

	fams = scrape(t, web.URL)
	if v := value(t, fams, "mailout_messages_total", "class", "delivered", "route", "relay").GetCounter().GetValue(); v != 2 {
		t.Errorf("delivered %v, want 2", v)
	}
	if v := value(t, fams, "mailout_messages_total", "class", "recipient-unknown", "route", "relay").GetCounter().GetValue(); v != 1 {
		t.Errorf("recipient-unknown %v, want 1", v)
	}
	// The first refusal pauses the run at once: the second message of
	// the group is never started, and its attempt is given back.
	if v := value(t, fams, "mailout_messages_total", "class", "auth-required", "route", "relay").GetCounter().GetValue(); v != 1 {
		t.Errorf("auth-required %v, want 1", v)
	}
	if v := value(t, fams, "mailout_breaker_trips_total", "route", "relay").GetCounter().GetValue(); v != 1 {
		t.Errorf("breaker trips %v, want 1", v)
	}
	// The done campaign has left the queue; the paused one waits in it.
	if v := value(t, fams, "mailout_queue_recipients", "state", "delivered").GetGauge().GetValue(); v != 0 {
		t.Errorf("queue delivered %v, want 0", v)
	}
	n := 0.0
	for _, st := range []string{"pending", "deferred"} {
		n += value(t, fams, "mailout_queue_recipients", "state", st).GetGauge().GetValue()
	}
	if n != 2 {
		t.Errorf("paused campaign's recipients in the queue: %v, want 2", n)
	}
	if v := value(t, fams, "mailout_send_rate").GetGauge().GetValue(); v != 4.0/60 {
		t.Errorf("send rate %v, want 4 attempts over the minute", v)
	}
	h := value(t, fams, "mailout_smtp_reply_seconds", "route", "relay").GetHistogram()
	if h.GetSampleCount() != 4 {
		t.Fatalf("latency samples %d, want 4", h.GetSampleCount())
	}
	for _, b := range h.Bucket {
		// Only the slow server's reply takes a second or more.
		if b.GetUpperBound() == 1 && b.GetCumulativeCount() != 3 {
			t.Errorf("replies within 1s: %d, want 3", b.GetCumulativeCount())
		}
	}
}

// A session that ends after a message's data was sent, before its reply,
// leaves a message that may have been delivered: sent again later, its
// recipient may get it twice. The operator sees how often.
func TestPossibleDuplicatesCounted(t *testing.T) {
	ctx := context.Background()
	svc, web := serve(t)

	srv := smtptest.Start(t, smtptest.Options{LocalPartFaults: true})
	c := create(t, svc, srv, "dup", "email\ndropafter@example.org\nok@example.org\n")
	if _, err := svc.Run(ctx, c, campaign.RunOptions{Profile: oneAtATime, Wait: 0}); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, web.URL)
	if v := value(t, fams, "mailout_possible_duplicates_total", "route", "relay").GetCounter().GetValue(); v != 1 {
		t.Errorf("possible duplicates %v, want 1 (the reply to the dropped message's data never came)", v)
	}
}
