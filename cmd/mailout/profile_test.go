package main

import (
	"encoding/json"
	"testing"

	"github.com/spf13/cobra"

	"mailout/internal/route"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// parseRunFlags registers the sending flags on a command and parses args.
func parseRunFlags(t *testing.T, args ...string) (*runFlags, *cobra.Command) {
	t.Helper()
	f := &runFlags{}
	cmd := &cobra.Command{Use: "x"}
	f.register(cmd, true)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("ParseFlags(%q): %v", args, err)
	}
	return f, cmd
}

// A sandbox send keeps every message on this machine: without speed flags
// it runs at full speed; a profile or rate given on purpose is honoured.
func TestSandboxProfileIsUnthrottledUnlessAsked(t *testing.T) {
	slow, _ := throttle.Lookup("slow")
	normal, _ := throttle.Lookup("normal")
	for _, tc := range []struct {
		name  string
		route route.Route
		args  []string
		check func(t *testing.T, p throttle.Profile)
	}{
		{"sandbox, no flags", "sandbox", nil, func(t *testing.T, p throttle.Profile) {
			if p.Rate != 0 || p.PauseEvery != 0 || p.Pause != 0 || p.PerConnection != 0 {
				t.Errorf("sandbox profile %+v limits the speed; want no rate, no pauses", p)
			}
		}},
		{"sandbox --profile slow", "sandbox", []string{"--profile", "slow"}, func(t *testing.T, p throttle.Profile) {
			if p != slow {
				t.Errorf("profile %+v, want slow %+v", p, slow)
			}
		}},
		{"sandbox --rate 2", "sandbox", []string{"--rate", "2"}, func(t *testing.T, p throttle.Profile) {
			if p.Rate != 2 {
				t.Errorf("rate %v, want the 2 asked for", p.Rate)
			}
		}},
		{"relay, no flags", "relay", nil, func(t *testing.T, p throttle.Profile) {
			if p != normal {
				t.Errorf("relay profile %+v, want normal %+v", p, normal)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, cmd := parseRunFlags(t, tc.args...)
			p, err := f.routeProfile(cmd, tc.route)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
			// resume of a campaign stored with the normal profile resolves
			// the same way.
			c := &store.Campaign{Route: tc.route, Profile: profileJSON(normal)}
			p, err = storedProfile(c, f, cmd)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
}

// profileJSON is a profile as a campaign stores it.
func profileJSON(p throttle.Profile) []byte {
	b, _ := json.Marshal(p)
	return b
}
