package campaign

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailout/internal/mx/mxtest"
	"mailout/internal/queue"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/store"
)

// Every route honours the suppression list: an address on it before the
// campaign is made, a whole domain, and an address put on it (an
// unsubscribe) after the campaign was made but before it runs are all
// stored as suppressed and never reach the server — on the sandbox, the
// relay, the direct and the hybrid route alike. Only ann is sent to.
func TestEveryRouteHonoursTheSuppressionList(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	_, port, _ := net.SplitHostPort(srv.Addr)
	mxPort, _ := strconv.Atoi(port)
	zone := mxtest.NewZone().
		MX("ok.test", 10, "mx.ok.test").A("mx.ok.test", "127.0.0.1").
		MX("blocked.test", 10, "mx.blocked.test").A("mx.blocked.test", "127.0.0.1")
	dns := mxtest.Start(t, zone)
	direct := RouteConfig{Route: "direct", DNS: []string{dns.Addr()}, AllowLoopbackMX: true, MXPort: mxPort, HELO: "sender.mailout.test"}
	hybrid := direct
	hybrid.Relays = []string{"smtp+insecure://" + srv.Addr}
	list := "email,first_name\nann@ok.test,Ann\nbob@ok.test,Bob\ncy@blocked.test,Cy\ndee@ok.test,Dee\n"
	want := map[string]queue.State{"ann@ok.test": queue.Delivered, "bob@ok.test": queue.Suppressed,
		"cy@blocked.test": queue.Suppressed, "dee@ok.test": queue.Suppressed}
	sent := 0
	for _, tc := range []struct {
		name string
		rc   RouteConfig
	}{
		{"sandbox", RouteConfig{Route: "sandbox"}},
		{"relay", RouteConfig{Relays: []string{"smtp+insecure://" + srv.Addr}, HELO: "sender.mailout.test"}},
		{"direct", direct},
		{"hybrid", hybrid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			svc, err := Open(ctx, filepath.Join(t.TempDir(), "mailout.db"), true, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			st := svc.Store()
			for _, key := range []string{"bob@ok.test", "@blocked.test"} {
				if err := st.Suppress(ctx, store.Suppression{Key: key, Reason: "manual", Source: "manual"}); err != nil {
					t.Fatal(err)
				}
			}
			rt, err := tc.rc.Check(route.Sandbox, Env{})
			if err != nil {
				t.Fatal(err)
			}
			draft, err := NewCampaign{Name: "spring", Routing: rt, MaxAge: time.Hour, RetryMin: time.Minute,
				Message: &store.Message{Template: []byte(testMessage), TemplateName: "message.txt"},
				Profile: oneAtATime}.Check(Env{})
			if err != nil {
				t.Fatal(err)
			}
			c, _, err := svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader(list), recipient.Options{}, nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Suppress(ctx, store.Suppression{Key: "dee@ok.test", Reason: "unsubscribed", Source: "unsubscribe-link"}); err != nil {
				t.Fatal(err)
			}
			res, err := svc.Run(ctx, c, RunOptions{Profile: oneAtATime, Wait: time.Second, NoDiagnosis: true})
			if err != nil || res.Stop != StopDone {
				t.Fatalf("Run: %+v, %v", res, err)
			}
			err = st.Deliveries(ctx, c.ID, store.DeliveryFilter{}, func(d *store.Delivery) error {
				if d.State != want[d.Email] {
					t.Errorf("%s: %s, want %s", d.Email, d.State, want[d.Email])
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var kept []string
			_ = st.Messages(ctx, c.ID, func(_ int64, email, _ string, _ []byte) error {
				kept = append(kept, email)
				return nil
			})
			if tc.name == "sandbox" {
				if !slices.Equal(kept, []string{"ann@ok.test"}) {
					t.Errorf("the sandbox kept messages to %v, want ann@ok.test alone", kept)
				}
				return
			}
			sent++
			msgs := srv.Messages()
			if len(msgs) != sent {
				t.Fatalf("the server has %d messages after %d sending routes", len(msgs), sent)
			}
			if r := msgs[len(msgs)-1].Rcpts; !slices.Equal(r, []string{"ann@ok.test"}) {
				t.Errorf("the server received a message for %v, want ann@ok.test alone", r)
			}
		})
	}
}
