// Package route names the ways a campaign's messages leave this machine.
// Every package that must tell them apart — the stored campaign, the
// outcome taxonomy and its advice, the transports, the doctor, the command
// line — uses this one type, so a route is spelled and checked in one place.
//
//   - Sandbox: every message is rendered and kept in the database; nothing
//     leaves the machine.
//   - Relay: through the provider's SMTP server (submission, RFC 6409).
//   - Direct: to each recipient domain's mail servers (MX, RFC 5321 §5).
//     With fallback relay accounts configured, direct is the hybrid route:
//     recipients direct delivery cannot reach for a local reason go
//     through the relay.
//
// Place in the flow: a leaf; it imports nothing of mailout.
package route

import (
	"errors"
	"fmt"
)

// Route is one of Sandbox, Relay or Direct; the zero value means "not
// stored" and is read as Default.
type Route string

// The routes.
const (
	Sandbox Route = "sandbox"
	Relay   Route = "relay"
	Direct  Route = "direct"
)

// Default is the route of a campaign that names none: the safe one, where
// nothing leaves the machine.
const Default = Sandbox

// All are the routes, in the order help texts list them.
var All = []Route{Sandbox, Relay, Direct}

// ErrUnknown is returned by Parse for a name that is not a route.
var ErrUnknown = errors.New("unknown route")

// Parse reads a route's name as written on a command line, in a
// configuration file or in a stored campaign.
func Parse(s string) (Route, error) {
	for _, r := range All {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w %q", ErrUnknown, s)
}

// OrDefault is r, or Default when r is empty (a campaign stored without
// a route).
func (r Route) OrDefault() Route {
	if r == "" {
		return Default
	}
	return r
}

// Sends reports whether messages on r leave this machine over SMTP.
func (r Route) Sends() bool { return r == Relay || r == Direct }

func (r Route) String() string { return string(r) }
