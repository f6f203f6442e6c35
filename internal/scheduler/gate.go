package scheduler

import "context"

// Gate shares the profile's limits with the other processes sending the
// same campaign (internal/fleet, over PostgreSQL). With a Gate, a session
// takes, with a per-domain limit, a connection slot of the group's domain
// and then one of the total ("" domain) before it sends a group, and
// gives them back when the group is done; every message start is asked of the
// Gate as well (Allow, Wait), and a rate-limited answer slows the domain
// down through it. The process's own limits stay in force as well: its
// sessions (Connections), a domain's sessions in the handout and the
// pause-every rule; only the rates are left to the Gate.
type Gate interface {
	// Acquire takes one connection slot of domain ("" = the total),
	// waiting while the fleet holds them all; the returned function gives
	// it back. It fails only when ctx ends or the gate is closed.
	Acquire(ctx context.Context, domain string) (release func(), err error)
	// Wait blocks until one more message to domain may start.
	Wait(ctx context.Context, domain string) error
	// Allow takes a start for domain when one is available without
	// waiting, and reports whether it did.
	Allow(domain string) bool
	// SlowDown slows domain down after a rate-limited answer.
	SlowDown(domain string)
}
