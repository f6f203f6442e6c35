package campaign

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"mailout/internal/mx"
	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/scheduler"
	"mailout/internal/store"
)

// dnsCheckDomains caps the domains dnsKnowsNone asks about.
const dnsCheckDomains = 10

// dnsKnowsNone is the direct route's scheduler.Config.CheckDNS: asked when
// the first attempts all found their recipient domain missing (NXDOMAIN),
// it looks up the sender's own domain and the campaign's busiest domains
// still to send, with the route's DNS servers, and reports whether the
// server knows none of them. A list that merely starts with dead domains
// has a sender domain that exists, and usually live domains after them: the
// run goes on. A server that only knows a company's own names, or filters,
// knows none: the run pauses.
func (s *Service) dnsKnowsNone(ctx context.Context, c *store.Campaign, settings Settings, from string) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var domains []string
	if _, d, ok := strings.Cut(from, "@"); ok {
		domains = append(domains, d)
	}
	if tallies, err := s.st.DomainTallies(ctx, c.ID); err == nil {
		left := map[string]int{}
		for _, t := range tallies {
			if t.State == queue.Pending || t.State == queue.Deferred {
				left[t.Domain] += t.N
			}
		}
		busiest := slices.SortedFunc(maps.Keys(left), func(a, b string) int {
			return cmp.Or(cmp.Compare(left[b], left[a]), strings.Compare(a, b))
		})
		domains = append(domains, busiest[:min(len(busiest), dnsCheckDomains)]...)
	}
	res, err := mx.New(mx.Config{Servers: settings.DNS, AllowLoopback: settings.AllowLoopbackMX, FailureTTL: -1})
	if err != nil {
		return true
	}
	for _, d := range domains {
		_, err := res.Lookup(ctx, d)
		if err == nil {
			return false
		}
		var me *mx.Error
		if errors.As(err, &me) {
			switch me.Kind {
			case mx.FailureNoData, mx.FailureMXNoAddress, mx.FailureNullMX, mx.FailureProhibited:
				return false // the name exists: the server knows it
			}
		}
	}
	return true
}

// resumedAfter starts the reason of a running campaign resumed from a
// pause that told the user something (toldBy), so that every run of it,
// the fleet's workers' too, knows.
const resumedAfter = "resumed after "

// toldBy returns what the pause c is resumed from told the user, of what
// pauses a run once only: receivers refusing the sender as unauthenticated,
// a DNS server that knows no recipient domain. The user resumed knowing
// it, so it pauses the run no more (scheduler.BreakerConfig.Told). reason
// is the status reason to run c with: it keeps what was told.
func toldBy(c *store.Campaign) (told []outcome.Class, reason string) {
	r := c.StatusReason
	switch c.Status {
	case store.CampaignPaused:
	case store.CampaignRunning:
		var ok bool
		if r, ok = strings.CutPrefix(r, resumedAfter); !ok {
			return nil, ""
		}
	default:
		return nil, ""
	}
	switch cl := scheduler.PauseClass(r); cl {
	case outcome.SenderUnauthenticated, outcome.DNSNXDomain:
		return []outcome.Class{cl}, resumedAfter + r
	}
	return nil, ""
}
