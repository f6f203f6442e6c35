// Package throttle paces sending: named speed profiles, a global rate, a
// rate and a concurrency cap per destination domain, pauses every N messages,
// and an automatic slow-down of a domain that answers "rate limited".
//
// Place in the flow: the scheduler claims due deliveries, groups them by
// route and domain, hands them to sessions within the profile's connection
// limits (Connections sessions, DomainConnections per domain), and asks a
// Limiter before each message (Wait, Allow); then the transport sends, and
// when outcome.Classify says rate-limited the scheduler calls SlowDown for
// that domain. Every wait runs on an injected Clock (RealClock() in
// production, FakeClock in tests), with token buckets from
// golang.org/x/time/rate driven by explicit times.
//
// The speed profiles (Lookup):
//
//	name    connections  msg/s  msgs/conn  pause            per-domain conns  per-domain msg/min
//	slow    1            1      20         30s every 50     1                 20
//	normal  5            10     100        none             2                 120
//	fast    20           50     500        none             5                 600
//
// "slow" is the profile the network-troubleshooting guide says to test a new
// set-up with: one connection, about one message a second, small pauses.
// "normal" suits a relay account of an ordinary provider or direct sending
// to a mix of domains. "fast" is for a dedicated relay service or a warm IP
// whose limits you know.
package throttle

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Profile is a speed profile: named presets (Lookup) or custom values.
type Profile struct {
	Name string
	// Connections is the total of concurrent SMTP sessions.
	Connections int
	// Rate is messages per second overall (0 = unlimited).
	Rate float64
	// PerConnection is how many messages one session carries before a new
	// one is opened (0 = unlimited). Enforced by the transport.
	PerConnection int
	// PauseEvery and Pause: after every PauseEvery messages, no message
	// starts for Pause (0 = never).
	PauseEvery int
	Pause      time.Duration
	// DomainConnections is the number of concurrent sessions per
	// destination domain, direct route (0 = only Connections bounds them).
	DomainConnections int
	// DomainRate is messages per minute per destination domain (0 =
	// unlimited).
	DomainRate float64
}

// ErrUnknownProfile is wrapped by Lookup for a name it does not know.
var ErrUnknownProfile = errors.New("unknown speed profile")

// Names returns the preset profile names, slowest first.
func Names() []string { return []string{"slow", "normal", "fast"} }

// Lookup returns the preset profile called name (case-insensitive).
func Lookup(name string) (Profile, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "slow":
		return Profile{Name: "slow", Connections: 1, Rate: 1, PerConnection: 20,
			PauseEvery: 50, Pause: 30 * time.Second, DomainConnections: 1, DomainRate: 20}, nil
	case "normal":
		return Profile{Name: "normal", Connections: 5, Rate: 10, PerConnection: 100,
			DomainConnections: 2, DomainRate: 120}, nil
	case "fast":
		return Profile{Name: "fast", Connections: 20, Rate: 50, PerConnection: 500,
			DomainConnections: 5, DomainRate: 600}, nil
	}
	return Profile{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownProfile, name, strings.Join(Names(), ", "))
}

// Validate reports the first value that makes no sense.
func (p Profile) Validate() error {
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case p.Connections < 1:
		return fmt.Errorf("speed profile %q: connections must be at least 1, not %d", p.Name, p.Connections)
	case p.Rate < 0 || !finite(p.Rate):
		return fmt.Errorf("speed profile %q: rate must be 0 (unlimited) or a positive number of messages per second", p.Name)
	case p.PerConnection < 0:
		return fmt.Errorf("speed profile %q: messages per connection must be 0 (unlimited) or positive", p.Name)
	case p.PauseEvery < 0 || p.Pause < 0:
		return fmt.Errorf("speed profile %q: pause values must not be negative", p.Name)
	case (p.PauseEvery > 0) != (p.Pause > 0):
		return fmt.Errorf("speed profile %q: set both pause-every and pause, or neither", p.Name)
	case p.DomainConnections < 0 || p.DomainConnections > p.Connections:
		return fmt.Errorf("speed profile %q: connections per domain must be between 0 and connections (%d)", p.Name, p.Connections)
	case p.DomainRate < 0 || !finite(p.DomainRate):
		return fmt.Errorf("speed profile %q: domain rate must be 0 (unlimited) or a positive number of messages per minute", p.Name)
	}
	return nil
}
