package scheduler

import (
	"strings"
	"testing"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/route"
	"mailout/internal/smtpclient"
)

var unauthenticated = outcome.Classify(outcome.Attempt{Route: route.Direct,
	Err: &smtpclient.Error{Command: "BODY", Code: 550, Enhanced: "5.7.26", Text: "Unauthenticated email from example.com is not accepted due to domain's DMARC policy."}})

var threeDomains = []string{"a.example", "b.example", "c.example"}

// Receivers that refuse the sender as unauthenticated pause the run: the
// sender's DNS is at fault, not the recipients, so nobody is failed or
// suppressed and the refused recipients are sent again on resume.
func TestRefusalsAsUnauthenticatedPauseTheRun(t *testing.T) {
	if unauthenticated.Class != outcome.SenderUnauthenticated {
		t.Fatalf("the test's reply classifies as %s", unauthenticated.Class)
	}
	for _, tc := range []struct {
		name    string
		refuses func(to string) bool
	}{
		{"from two domains", func(to string) bool { return !strings.HasSuffix(to, "@c.example") }},
		{"from one domain, again and again", func(to string) bool { return strings.HasSuffix(to, "@a.example") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, st, c := runDirect(t, 90, threeDomains, func(to string) outcome.Result {
				if tc.refuses(to) {
					return unauthenticated
				}
				return delivered
			})
			if res.Stop != StopPaused || res.PauseResult == nil || res.PauseResult.Class != outcome.SenderUnauthenticated {
				t.Fatalf("stop %s, pause %+v; want paused for sender-unauthenticated", res.Stop, res.PauseResult)
			}
			if !strings.Contains(res.Reason, "5.7.26") {
				t.Errorf("reason %q does not carry the receiver's reply", res.Reason)
			}
			n := counts(t, st, c)
			if n.ByState[queue.Failed] != 0 || n.ByState[queue.Suppressed] != 0 || n.ByState[queue.Sending] != 0 {
				t.Fatalf("after the pause: %+v; nobody may be failed, suppressed or left leased", n.ByState)
			}
			// It stops early: a few groups in flight at most, not the list.
			if sent := n.ByState[queue.Delivered] + n.ByState[queue.Deferred]; sent >= 90 {
				t.Errorf("%d of 90 attempted before the pause", sent)
			}
		})
	}
}

// One refusal from one receiver is that receiver's affair: the recipient
// is retried later, the run goes on.
func TestOneRefusalAsUnauthenticatedDoesNotPause(t *testing.T) {
	res, st, c := runDirect(t, 30, threeDomains, func(to string) outcome.Result {
		if to == "r0@a.example" {
			return unauthenticated
		}
		return delivered
	})
	if res.Stop == StopPaused {
		t.Fatalf("paused for one refusal: %s", res.Reason)
	}
	n := counts(t, st, c)
	if n.ByState[queue.Delivered] != 29 || n.ByState[queue.Deferred] != 1 {
		t.Fatalf("%+v; want 29 delivered and the refused one deferred", n.ByState)
	}
}

// Resumed after such a pause, the run does not pause for it again: the
// user was told and chose to go on.
func TestToldRefusalsDoNotPauseAgain(t *testing.T) {
	for _, res := range []outcome.Result{unauthenticated, {Class: outcome.DNSNXDomain, Kind: outcome.KindPermanent}} {
		t.Run(string(res.Class), func(t *testing.T) {
			v := &verdict{breaker: newBreaker(BreakerConfig{FirstAttempts: 10, MinDomains: 2, Window: 50, WindowRate: 0.9,
				Told: []outcome.Class{res.Class}}, 1000), stop: func() {}, base: t.Context()}
			for i := range 100 {
				v.observe(res, threeDomains[i%3], true)
			}
			if _, pause := v.state(); pause != nil {
				t.Fatalf("paused again for %s: %+v", res.Class, pause)
			}
		})
	}
}

// The status reason of a paused campaign names the class that paused it,
// whatever else the reply held; any other reason names none.
func TestPauseClassReadsPauseReason(t *testing.T) {
	for _, p := range []outcome.Result{
		unauthenticated,
		{Class: outcome.DNSNXDomain, Text: "domain a.example does not exist"},
		{Class: outcome.DNSNXDomain, Host: "a.example"},
		{Class: outcome.ConnectTimeout},
	} {
		if got := PauseClass(pauseReason(&p)); got != p.Class {
			t.Errorf("PauseClass(%q) = %q, want %q", pauseReason(&p), got, p.Class)
		}
	}
	for _, r := range []string{"", "paused", "interrupted", "resumed after dns-nxdomain: x"} {
		if got := PauseClass(r); got != "" {
			t.Errorf("PauseClass(%q) = %q, want none", r, got)
		}
	}
}
