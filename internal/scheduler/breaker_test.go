package scheduler

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"mailout/internal/outcome"
)

func TestBreaker(t *testing.T) {
	cfg := BreakerConfig{FirstAttempts: 10, MinDomains: 2, Window: 50, WindowRate: 0.9}
	type step struct {
		fault  fault
		domain string
		n      int
	}
	const bad, good, nx = ours, notOurs, maybeOurs
	tests := []struct {
		name   string
		cfg    BreakerConfig
		total  int
		steps  []step
		tripAt int    // attempt number that trips (0 = never)
		why    string // part of the reason
	}{
		{"nothing gets out", cfg, 1000, []step{{bad, "a", 5}, {bad, "b", 5}}, 10, "first 10 attempts"},
		{"one broken domain is not us", cfg, 1000, []step{{bad, "a", 30}, {good, "b", 1}}, 0, ""},
		{"a small campaign trips after all", cfg, 4, []step{{bad, "a", 4}}, 4, "first 4 attempts"},
		{"first signal waits for a second domain", cfg, 1000, []step{{bad, "a", 12}, {bad, "b", 1}}, 13, "first 13 attempts"},
		{"network breaks mid-campaign", cfg, 1000, []step{{good, "a", 100}, {bad, "a", 25}, {bad, "b", 25}}, 145, "45 of the last 50"},
		{"80% local faults is not enough", cfg, 1000, []step{{good, "a", 100}, {bad, "a", 20}, {bad, "b", 20}, {good, "c", 10},
			{bad, "a", 20}, {bad, "b", 20}, {good, "c", 10}}, 0, ""},
		{"disabled", BreakerConfig{Disabled: true, FirstAttempts: 10, Window: 50, WindowRate: 0.9}, 1000, []step{{bad, "a", 60}, {bad, "b", 60}}, 0, ""},
		// Recipient domains that do not exist (NXDOMAIN).
		{"every domain missing: the DNS server is suspect", cfg, 1000, []step{{nx, "a", 5}, {nx, "b", 5}}, 10, "DNS server is suspect"},
		{"missing and local faults together", cfg, 1000, []step{{nx, "a", 5}, {bad, "b", 5}}, 10, "first 10 attempts all failed on our side"},
		{"one missing domain in a small campaign is that domain's", cfg, 3, []step{{nx, "a", 3}}, 0, ""},
		{"typos among deliveries", cfg, 1000, []step{{nx, "a", 3}, {good, "b", 1}, {nx, "c", 20}}, 0, ""},
		{"missing domains mid-campaign are the list's", cfg, 1000, []step{{good, "a", 10}, {nx, "a", 50}, {nx, "b", 50}}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreaker(tt.cfg, tt.total)
			n := 0
			for _, s := range tt.steps {
				for range s.n {
					n++
					if why, _ := b.observe(s.fault, s.domain); why != "" {
						if n != tt.tripAt || !strings.Contains(why, tt.why) {
							t.Fatalf("tripped at attempt %d (%q); want %d (%q)", n, why, tt.tripAt, tt.why)
						}
						return
					}
				}
			}
			if tt.tripAt != 0 {
				t.Fatalf("never tripped; want at attempt %d", tt.tripAt)
			}
		})
	}
}

func ExampleBreakerConfig() {
	b := newBreaker(BreakerConfig{FirstAttempts: 3, Window: 10, WindowRate: 0.9}, 100)
	for i := range 3 {
		if why, _ := b.observe(ours, fmt.Sprintf("d%d.example", i)); why != "" {
			fmt.Println(why)
		}
	}
	// Output: the first 3 attempts all failed on our side
}

// Before the breaker pauses for recipient domains that do not exist, the
// verdict asks whether the DNS server knows the campaign's other domains:
// if it does, the missing ones are the list's own (a list that starts with
// dead addresses) and the run goes on, the first-attempts signal over;
// if not, the server is at fault and the run pauses.
func TestVerdictAsksTheDNSServerBeforePausingForMissingDomains(t *testing.T) {
	nx := outcome.Result{Class: outcome.DNSNXDomain, Kind: outcome.KindPermanent, Reason: "test"}
	for _, knows := range []bool{true, false} {
		t.Run(fmt.Sprintf("server knows other domains: %v", knows), func(t *testing.T) {
			asked := 0
			stopped := false
			v := &verdict{breaker: newBreaker(BreakerConfig{FirstAttempts: 10, MinDomains: 2, Window: 50, WindowRate: 0.9}, 1000),
				stop: func() { stopped = true }, base: context.Background(),
				checkDNS: func(context.Context) bool { asked++; return !knows }}
			for i := range 30 {
				v.observe(nx, fmt.Sprintf("gone%d.example", i%3), true)
			}
			_, pause := v.state()
			if asked != 1 {
				t.Errorf("the DNS server was asked %d times, want once", asked)
			}
			if knows && (pause != nil || stopped) {
				t.Errorf("paused although the DNS server knows other domains: %+v", pause)
			}
			if !knows && (pause == nil || pause.Class != outcome.DNSNXDomain || !stopped || !strings.Contains(pause.Reason, "DNS server is suspect")) {
				t.Errorf("pause %+v, stopped %v; want a pause for the DNS server", pause, stopped)
			}
		})
	}
}
