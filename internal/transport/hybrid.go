package transport

import (
	"context"
	"log/slog"
	"sync"

	"mailout/internal/outcome"
)

// Hybrid sends directly and hands a message to a relay when direct delivery
// cannot work from here — the desktop product's "retry the other way on
// error": a fault on our side (DNS server unreachable, port 25 blocked or
// refused, no route) or, when After > 0, a temporary failure on the
// After-th attempt or later. Once a domain needed the relay, its later
// messages go straight to the relay. Result.Via says which way each went.
//
// A group of messages (DeliverBatch) goes out pipelined both ways: the
// messages of domains that go direct as one direct batch, those of
// domains moved to the relay, and those the direct way handed over, as
// one relay batch.
type Hybrid struct {
	Direct Transport
	Relay  Transport
	// After: hand over after this many temporary direct failures (0: only
	// on faults on our side).
	After  int
	Logger *slog.Logger

	mu       sync.Mutex
	viaRelay map[string]bool // domains that go by the relay now
}

// Deliver tries the direct way first unless the domain already moved.
func (h *Hybrid) Deliver(ctx context.Context, m *Message) Result {
	return h.DeliverBatch(ctx, []*Message{m}, nil)[0]
}

// DeliverBatch sends the messages of domains that go direct as a direct
// batch and the others, with those the direct way handed over, as a relay
// batch. done gets each message's final result once: a message handed to
// the relay is reported when the relay is done with it.
func (h *Hybrid) DeliverBatch(ctx context.Context, msgs []*Message, done func(i int, r Result)) []Result {
	out := make([]Result, len(msgs))
	why := make([]string, len(msgs)) // why message k went by the relay, "" when its domain had moved
	var direct, relay []int
	for k, m := range msgs {
		if h.moved(m.Domain) {
			relay = append(relay, k)
		} else {
			direct = append(direct, k)
		}
	}
	sendBatch(ctx, h.Direct, msgs, direct, func(k int, res Result) {
		switch {
		case res.Class == outcome.Delivered:
		case localNetworkFault(res.Result):
			if h.move(msgs[k].Domain) && h.Logger != nil {
				h.Logger.Warn("direct delivery cannot work from here; using the fallback relay for this domain",
					"rcpt_domain", msgs[k].Domain, "class", res.Class, "host", res.Host)
			}
			why[k] = string(res.Class)
			relay = append(relay, k)
			return
		case h.After > 0 && res.Kind == outcome.KindTemporary && msgs[k].Attempt >= h.After:
			why[k] = string(res.Class)
			relay = append(relay, k)
			return
		}
		out[k] = res
		if done != nil {
			done(k, res)
		}
	})
	sendBatch(ctx, h.Relay, msgs, relay, func(k int, res Result) {
		if why[k] != "" {
			res.Via += " (direct failed: " + why[k] + ")"
		}
		out[k] = res
		if done != nil {
			done(k, res)
		}
	})
	return out
}

// sendBatch sends msgs[idx] through t, pipelined when t is a Batcher,
// handing each message's result to emit (with its index in msgs) as soon
// as it is known.
func sendBatch(ctx context.Context, t Transport, msgs []*Message, idx []int, emit func(k int, r Result)) {
	b, ok := t.(Batcher)
	if !ok || len(idx) == 1 {
		for _, k := range idx {
			emit(k, t.Deliver(ctx, msgs[k]))
		}
		return
	}
	if len(idx) == 0 {
		return
	}
	part := make([]*Message, len(idx))
	for j, k := range idx {
		part[j] = msgs[k]
	}
	reported := make([]bool, len(idx))
	var mu sync.Mutex
	report := func(j int, r Result) {
		mu.Lock()
		defer mu.Unlock()
		if !reported[j] {
			reported[j] = true
			emit(idx[j], r)
		}
	}
	res := b.DeliverBatch(ctx, part, report)
	// One report per message is the contract; a message the transport did
	// not report is reported from the returned results.
	for j := range idx {
		report(j, res[j])
	}
}

// moved reports whether domain goes by the relay now.
func (h *Hybrid) moved(domain string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.viaRelay[domain]
}

// move sends domain's later messages by the relay; it reports whether the
// domain had not moved before.
func (h *Hybrid) move(domain string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.viaRelay[domain] {
		return false
	}
	if h.viaRelay == nil {
		h.viaRelay = map[string]bool{}
	}
	h.viaRelay[domain] = true
	return true
}

// localNetworkFault: direct delivery is blocked on our side. A refused
// connection counts only when the classifier blames our side: on its own it
// is usually the remote host being down.
func localNetworkFault(r outcome.Result) bool {
	switch r.Class {
	case outcome.DNSUnreachable, outcome.ConnectTimeout, outcome.NetworkUnreachable:
		return true
	case outcome.ConnectRefused:
		return r.LocalFault
	}
	return false
}

// Close closes both ways.
func (h *Hybrid) Close() error {
	err := h.Direct.Close()
	if e := h.Relay.Close(); err == nil {
		err = e
	}
	return err
}

var _ Batcher = (*Hybrid)(nil)
