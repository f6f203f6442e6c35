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
	h.mu.Lock()
	moved := h.viaRelay[m.Domain]
	h.mu.Unlock()
	if moved {
		return h.relay(ctx, m, "")
	}
	res := h.Direct.Deliver(ctx, m)
	switch {
	case res.Class == outcome.Delivered:
		return res
	case localNetworkFault(res.Result):
		h.mu.Lock()
		if h.viaRelay == nil {
			h.viaRelay = map[string]bool{}
		}
		h.viaRelay[m.Domain] = true
		h.mu.Unlock()
		if h.Logger != nil {
			h.Logger.Warn("direct delivery cannot work from here; using the fallback relay for this domain",
				"rcpt_domain", m.Domain, "class", res.Class, "host", res.Host)
		}
		return h.relay(ctx, m, string(res.Class))
	case h.After > 0 && res.Kind == outcome.KindTemporary && m.Attempt >= h.After:
		return h.relay(ctx, m, string(res.Class))
	}
	return res
}

func (h *Hybrid) relay(ctx context.Context, m *Message, why string) Result {
	res := h.Relay.Deliver(ctx, m)
	if why != "" {
		res.Via += " (direct failed: " + why + ")"
	}
	return res
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

var _ Transport = (*Hybrid)(nil)
