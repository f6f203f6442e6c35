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

// maxHosts bounds the MX hosts listed per domain.
const maxHosts = 4

// Domains tallies a campaign's deliveries per recipient domain, largest
// first.
func Domains(st func(fn func(*store.Delivery) error) error) ([]DomainRow, error) {
	m := map[string]*DomainRow{}
	err := st(func(d *store.Delivery) error {
		r := m[d.Domain]
		if r == nil {
			r = &DomainRow{Domain: d.Domain}
			m[d.Domain] = r
		}
		r.Total++
		switch d.State {
		case queue.Delivered:
			r.Delivered++
		case queue.Failed:
			r.Failed++
			if r.Classes == nil {
				r.Classes = map[string]int{}
			}
			r.Classes[string(d.Class)]++
		case queue.Deferred:
			r.Deferred++
		case queue.Pending, queue.Sending:
			r.Pending++
		}
		if d.Host != "" && len(r.Hosts) < maxHosts && !contains(r.Hosts, d.Host) {
			r.Hosts = append(r.Hosts, d.Host)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]DomainRow, 0, len(m))
	for _, r := range m {
		sort.Strings(r.Hosts)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Total != out[j].Total {
			return out[i].Total > out[j].Total
		}
		return out[i].Domain < out[j].Domain
	})
	return out, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
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
