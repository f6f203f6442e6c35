package scheduler

import (
	"fmt"

	"mailout/internal/outcome"
)

// breaker decides when a run can deliver nothing because of a fault on our
// side — the troubleshooting guide's "nothing at all gets delivered is the
// signature of a local network or configuration problem" — so that the
// campaign pauses instead of marking its list failed.
//
// It trips on either of two signals:
//   - the first attempts of the run (FirstAttempts, or every recipient
//     when there are fewer) all end in local-fault classes;
//   - over a sliding window of the last Window attempts, the share of
//     local faults reaches WindowRate (the network broke mid-campaign).
//
// Both need the local faults to span MinDomains recipient domains (unless
// the campaign has fewer), so one broken domain does not look like a
// blocked port 25. Among the first attempts, a recipient domain that does
// not exist (NXDOMAIN) counts too, over two domains at least: a DNS server
// that answers so for every name (one that only knows a company's own
// names, or filters) would otherwise fail the whole list for good. Not
// safe for concurrent use: the verdict calls it under its mutex.
type breaker struct {
	cfg   BreakerConfig
	total int // recipients the run started with

	firstSeen, firstBad int
	firstMaybe          int // of firstBad, the maybeOurs ones
	firstOver           bool
	firstDomains        map[string]bool

	ring    []windowEntry
	next    int
	full    bool
	bad     int
	domains map[string]int // bad attempts in the window, by domain
}

// fault says how an attempt counts for the breaker.
type fault int

const (
	notOurs   fault = iota // delivered, or the receiver's doing
	ours                   // a local fault: our network or configuration
	maybeOurs              // ours for the first attempts, over 2 domains at least
)

// faultOf is how an outcome counts for the breaker.
func faultOf(res outcome.Result) fault {
	switch {
	case res.LocalFault:
		return ours
	case res.Class == outcome.DNSNXDomain:
		return maybeOurs
	}
	return notOurs
}

type windowEntry struct {
	bad    bool
	domain string
}

// maxTrackedDomains bounds the domains remembered for the first attempts:
// MinDomains is small, so a few suffice.
const maxTrackedDomains = 16

func newBreaker(cfg BreakerConfig, total int) *breaker {
	return &breaker{cfg: cfg, total: total, firstDomains: map[string]bool{},
		ring: make([]windowEntry, cfg.Window), domains: map[string]int{}}
}

// observe takes one attempt's outcome; it returns why to pause, or "".
// missing says the first attempts tripped it with recipient domains that
// do not exist alone: a pause only if the DNS server knows none of the
// campaign's other domains either (the verdict asks; see endFirst).
func (b *breaker) observe(f fault, domain string) (why string, missing bool) {
	if b.cfg.Disabled {
		return "", false
	}
	if why := b.first(f, domain); why != "" {
		return why, b.firstMaybe == b.firstBad
	}
	return b.window(f == ours, domain), false
}

// endFirst ends the first-attempts signal, as a delivery would: the
// missing domains it saw are the list's own.
func (b *breaker) endFirst() { b.firstOver = true }

func (b *breaker) first(f fault, domain string) string {
	if b.firstOver || b.firstBad != b.firstSeen {
		return "" // something got out: the first-attempts signal is over
	}
	b.firstSeen++
	if f == notOurs {
		return ""
	}
	b.firstBad++
	if f == maybeOurs {
		b.firstMaybe++
	}
	if len(b.firstDomains) < maxTrackedDomains {
		b.firstDomains[domain] = true
	}
	limit := min(b.cfg.FirstAttempts, max(b.total, 1))
	if b.firstSeen < limit {
		return ""
	}
	if b.firstMaybe > 0 {
		// Names that do not exist, from one domain only, are that
		// domain's: never a pause, however small the campaign.
		if len(b.firstDomains) < max(b.cfg.MinDomains, 2) {
			return ""
		}
	} else if len(b.firstDomains) < b.cfg.MinDomains && b.firstSeen < b.total {
		return "" // keep looking until a second domain fails too
	}
	if b.firstMaybe == b.firstBad {
		return fmt.Sprintf("the first %d attempts all found their recipient domain missing (NXDOMAIN), over %d domains or more: the DNS server is suspect", b.firstSeen, len(b.firstDomains))
	}
	return fmt.Sprintf("the first %d attempts all failed on our side", b.firstSeen)
}

func (b *breaker) window(localFault bool, domain string) string {
	if len(b.ring) == 0 {
		return ""
	}
	old := b.ring[b.next]
	if b.full && old.bad {
		b.bad--
		if b.domains[old.domain]--; b.domains[old.domain] == 0 {
			delete(b.domains, old.domain)
		}
	}
	b.ring[b.next] = windowEntry{bad: localFault, domain: domain}
	if localFault {
		b.bad++
		b.domains[domain]++
	}
	b.next = (b.next + 1) % len(b.ring)
	if b.next == 0 {
		b.full = true
	}
	if !b.full || float64(b.bad) < b.cfg.WindowRate*float64(len(b.ring)) || len(b.domains) < b.cfg.MinDomains {
		return ""
	}
	return fmt.Sprintf("%d of the last %d attempts failed on our side", b.bad, len(b.ring))
}
