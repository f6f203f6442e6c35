package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"mailout/internal/queue"
	"mailout/internal/store"
)

// DomainRow is one recipient domain's tally: how its recipients ended and
// which mail servers took their messages (direct route).
type DomainRow struct {
	Domain    string         `json:"domain"`
	Total     int            `json:"total"`
	Delivered int            `json:"delivered"`
	Failed    int            `json:"failed"`
	Deferred  int            `json:"deferred"`
	Pending   int            `json:"pending"`
	Hosts     []string       `json:"mx_hosts,omitempty"`
	Classes   map[string]int `json:"failed_by_class,omitempty"`
}

// maxHosts bounds the MX hosts listed per domain: those that took the
// most of its messages.
const maxHosts = 4

// Domains adds up a campaign's tallies (store.Store.DomainTallies) per
// recipient domain, largest first.
func Domains(tallies []store.DomainTally) []DomainRow {
	m := map[string]*DomainRow{}
	hosts := map[string]map[string]int{} // domain -> host -> messages
	for _, t := range tallies {
		r := m[t.Domain]
		if r == nil {
			r = &DomainRow{Domain: t.Domain}
			m[t.Domain] = r
		}
		r.Total += t.N
		switch t.State {
		case queue.Delivered:
			r.Delivered += t.N
		case queue.Failed:
			r.Failed += t.N
			if r.Classes == nil {
				r.Classes = map[string]int{}
			}
			r.Classes[string(t.Class)] += t.N
		case queue.Deferred:
			r.Deferred += t.N
		case queue.Pending, queue.Sending:
			r.Pending += t.N
		}
		if t.Host != "" {
			if hosts[t.Domain] == nil {
				hosts[t.Domain] = map[string]int{}
			}
			hosts[t.Domain][t.Host] += t.N
		}
	}
	out := make([]DomainRow, 0, len(m))
	for _, r := range m {
		r.Hosts = busiest(hosts[r.Domain], maxHosts)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Total != out[j].Total {
			return out[i].Total > out[j].Total
		}
		return out[i].Domain < out[j].Domain
	})
	return out
}

// busiest returns the n hosts with the most messages, sorted by name.
func busiest(byHost map[string]int, n int) []string {
	hs := make([]string, 0, len(byHost))
	for h := range byHost {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool {
		if byHost[hs[i]] != byHost[hs[j]] {
			return byHost[hs[i]] > byHost[hs[j]]
		}
		return hs[i] < hs[j]
	})
	hs = hs[:min(n, len(hs))]
	sort.Strings(hs)
	if len(hs) == 0 {
		return nil
	}
	return hs
}

// WriteDomains prints the per-domain table, at most limit rows (0 = all).
func WriteDomains(w io.Writer, rows []DomainRow, limit int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tRECIPIENTS\tDELIVERED\tFAILED\tDEFERRED\tPENDING\tMAIL SERVERS\tFAILURES")
	for i, r := range rows {
		if limit > 0 && i == limit {
			fmt.Fprintf(tw, "… %d more domains (mailout report NAME --by-domain)\n", len(rows)-limit)
			break
		}
		var fails []string
		for c, n := range r.Classes {
			fails = append(fails, fmt.Sprintf("%s %d", c, n))
		}
		sort.Strings(fails)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Domain, r.Total, r.Delivered, r.Failed, r.Deferred, r.Pending,
			strings.Join(r.Hosts, " "), strings.Join(fails, ", "))
	}
	return tw.Flush()
}
