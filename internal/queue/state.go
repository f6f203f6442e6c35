// Package queue is the delivery state machine: the states a delivery row
// moves through, the transitions an attempt's outcome causes, and the retry
// schedule. It is pure: no I/O, the clock and randomness are passed in.
//
// Place in the flow: scheduler -> transport -> outcome.Classify -> queue.Next
// -> store.Record.
//
//	pending -> sending (leased) -> delivered | deferred | failed | suppressed
//	deferred -> sending (when due)
//	sending -> pending (lease expired: crashed or stopped worker)
package queue

// State of one delivery row. The string values are stored.
type State string

const (
	Pending    State = "pending"
	Sending    State = "sending"
	Delivered  State = "delivered"
	Deferred   State = "deferred"
	Failed     State = "failed"
	Suppressed State = "suppressed"
)

// Final reports whether no more attempts will be made in this state.
func (s State) Final() bool {
	return s == Delivered || s == Failed || s == Suppressed
}

// States lists every state, in flow order.
var States = []State{Pending, Sending, Deferred, Delivered, Failed, Suppressed}
