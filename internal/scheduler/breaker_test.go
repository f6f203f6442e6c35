package scheduler

import (
	"fmt"
	"strings"
	"testing"
)

func TestBreaker(t *testing.T) {
	cfg := BreakerConfig{FirstAttempts: 10, MinDomains: 2, Window: 50, WindowRate: 0.9}
	type step struct {
		bad    bool
		domain string
		n      int
	}
	tests := []struct {
		name   string
		cfg    BreakerConfig
		total  int
		steps  []step
		tripAt int    // attempt number that trips (0 = never)
		why    string // part of the reason
	}{
		{"nothing gets out", cfg, 1000, []step{{true, "a", 5}, {true, "b", 5}}, 10, "first 10 attempts"},
		{"one broken domain is not us", cfg, 1000, []step{{true, "a", 30}, {false, "b", 1}}, 0, ""},
		{"a small campaign trips after all", cfg, 4, []step{{true, "a", 4}}, 4, "first 4 attempts"},
		{"first signal waits for a second domain", cfg, 1000, []step{{true, "a", 12}, {true, "b", 1}}, 13, "first 13 attempts"},
		{"network breaks mid-campaign", cfg, 1000, []step{{false, "a", 100}, {true, "a", 25}, {true, "b", 25}}, 145, "45 of the last 50"},
		{"80% local faults is not enough", cfg, 1000, []step{{false, "a", 100}, {true, "a", 20}, {true, "b", 20}, {false, "c", 10},
			{true, "a", 20}, {true, "b", 20}, {false, "c", 10}}, 0, ""},
		{"disabled", BreakerConfig{Disabled: true, FirstAttempts: 10, Window: 50, WindowRate: 0.9}, 1000, []step{{true, "a", 60}, {true, "b", 60}}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreaker(tt.cfg, tt.total)
			n := 0
			for _, s := range tt.steps {
				for range s.n {
					n++
					if why := b.observe(s.bad, s.domain); why != "" {
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
		if why := b.observe(true, fmt.Sprintf("d%d.example", i)); why != "" {
			fmt.Println(why)
		}
	}
	// Output: the first 3 attempts all failed on our side
}
