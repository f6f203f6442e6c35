// Package report turns a campaign's stored state into what people read:
// the end-of-run summary (text or one JSON object) and the per-recipient
// outcome list (table, CSV safe for spreadsheets, JSON), each failure with
// its class, the server's own reply and the advice line.
//
// Place in the flow: store (counts, deliveries) -> report -> CLI / web.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/route"
	"mailout/internal/store"
)

// Summary is the tally of one campaign.
type Summary struct {
	Campaign  string         `json:"campaign"`
	Status    string         `json:"status"`
	Reason    string         `json:"reason,omitempty"`
	Total     int            `json:"total"`
	Delivered int            `json:"delivered"`
	Failed    int            `json:"failed"`
	FailedBy  map[string]int `json:"failed_by_class"`
	Deferred  int            `json:"deferred"`
	Pending   int            `json:"pending"`
	// Sending counts the recipients in flight, by a row lease or a range
	// claim, as the per-recipient report shows them. When the run that
	// claimed them is gone they may have been sent: the next run sends them
	// again, flagged as possible duplicates.
	Sending    int `json:"sending"`
	Suppressed int `json:"suppressed"`
	// Unsubscribed counts the recipients who unsubscribed through the
	// campaign's links (one-click or the confirmation page).
	Unsubscribed int `json:"unsubscribed"`
	// NextRetry is when the first deferred recipient is due.
	NextRetry *time.Time `json:"next_retry,omitempty"`
	// Until is the campaign's deadline for retries (created + max age).
	Until *time.Time `json:"retry_until,omitempty"`
	// Advice is the advice line of the pause reason, when paused.
	Advice string `json:"advice,omitempty"`
	// Domains is the per-domain tally (direct route).
	Domains []DomainRow `json:"domains,omitempty"`
	// Diagnosis is the doctor's report (JSON) when the campaign paused
	// itself because nothing could get out.
	Diagnosis json.RawMessage `json:"diagnosis,omitempty"`
}

// NewSummary builds the summary from the campaign and its counts.
func NewSummary(c *store.Campaign, n *store.Counts) *Summary {
	s := &Summary{
		Campaign: c.Name, Status: string(c.Status), Reason: c.StatusReason,
		Total: n.Total, Delivered: n.ByState[queue.Delivered], Failed: n.ByState[queue.Failed],
		Deferred: n.ByState[queue.Deferred], Pending: n.ByState[queue.Pending], Sending: n.ByState[queue.Sending],
		Suppressed: n.ByState[queue.Suppressed], FailedBy: map[string]int{},
	}
	for k, v := range n.ByClass {
		s.FailedBy[string(k)] = v
	}
	if !n.NextDue.IsZero() && (s.Deferred > 0 || s.Pending > 0 || s.Sending > 0) {
		t := n.NextDue
		s.NextRetry = &t
		u := c.CreatedAt.Add(c.MaxAge)
		s.Until = &u
	}
	return s
}

// WriteText prints the summary for a person.
func (s *Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Campaign %q: %s", s.Campaign, s.Status)
	if s.Reason != "" {
		fmt.Fprintf(w, " (%s)", s.Reason)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  recipients  %d\n", s.Total)
	fmt.Fprintf(w, "  delivered   %d\n", s.Delivered)
	fmt.Fprintf(w, "  failed      %d\n", s.Failed)
	classes := make([]string, 0, len(s.FailedBy))
	for k := range s.FailedBy {
		classes = append(classes, k)
	}
	sort.Strings(classes)
	for _, k := range classes {
		fmt.Fprintf(w, "    %-22s %d\n", k, s.FailedBy[k])
	}
	if s.Deferred > 0 {
		fmt.Fprintf(w, "  deferred    %d", s.Deferred)
		if s.NextRetry != nil {
			fmt.Fprintf(w, " (next retry %s, retried until %s)",
				s.NextRetry.Local().Format(time.DateTime), s.Until.Local().Format(time.DateTime))
		}
		fmt.Fprintln(w)
	}
	if s.Pending > 0 {
		fmt.Fprintf(w, "  pending     %d\n", s.Pending)
	}
	if s.Sending > 0 {
		fmt.Fprintf(w, "  sending     %d (in flight; they may have been sent: a resume after an interrupted run sends them again, flagged as possible duplicates)\n", s.Sending)
	}
	if s.Suppressed > 0 {
		fmt.Fprintf(w, "  suppressed  %d\n", s.Suppressed)
	}
	if s.Unsubscribed > 0 {
		fmt.Fprintf(w, "  unsubscribed %d\n", s.Unsubscribed)
	}
	if s.Advice != "" && len(s.Diagnosis) == 0 {
		fmt.Fprintf(w, "\n%s\n", s.Advice)
	}
}

// WriteJSON prints the summary as one JSON object.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// Row is one recipient's line of the report.
type Row struct {
	Line      int    `json:"line"`
	Email     string `json:"email"`
	State     string `json:"state"`
	Class     string `json:"class,omitempty"`
	Code      int    `json:"code,omitempty"`
	Enhanced  string `json:"enhanced,omitempty"`
	Text      string `json:"text,omitempty"`
	Host      string `json:"host,omitempty"`
	Via       string `json:"via,omitempty"`
	Attempts  int    `json:"attempts"`
	MessageID string `json:"message_id,omitempty"`
	Duplicate bool   `json:"possible_duplicate,omitempty"`
	Advice    string `json:"advice,omitempty"`
	Updated   string `json:"updated,omitempty"`
	// Bounced is when a bounce for the message was read from the bounce
	// mailbox: the row is failed with the bounce's class: the message was
	// accepted and bounced later.
	Bounced string `json:"bounced_at,omitempty"`
	// Complained is when the recipient reported the message as spam.
	Complained string `json:"complained_at,omitempty"`
}

// NewRow builds a report row; advice is given for failed and deferred
// recipients in the language asked ("en", "es").
func NewRow(d *store.Delivery, rt route.Route, lang string) Row {
	r := Row{
		Line: d.Line, Email: d.Email, State: string(d.State), Class: string(d.Class), Code: d.Code,
		Enhanced: d.Enhanced, Text: d.Text, Host: d.Host, Via: d.Via, Attempts: d.Attempts,
		MessageID: d.MessageID, Duplicate: d.PossibleDuplicate,
	}
	if !d.UpdatedAt.IsZero() {
		r.Updated = d.UpdatedAt.UTC().Format(time.RFC3339)
	}
	if !d.BouncedAt.IsZero() {
		r.Bounced = d.BouncedAt.UTC().Format(time.RFC3339)
	}
	if !d.ComplainedAt.IsZero() {
		r.Complained = d.ComplainedAt.UTC().Format(time.RFC3339)
	}
	if (d.State == queue.Failed || d.State == queue.Deferred) && d.Class != "" {
		r.Advice = outcome.Advice(d.Class, rt, lang)
	}
	return r
}

// Columns of the CSV and table forms.
var Columns = []string{"line", "email", "state", "class", "code", "enhanced", "text", "host", "via", "attempts", "message_id", "possible_duplicate", "advice", "updated", "bounced_at", "complained_at"}

func (r Row) fields() []string {
	code := ""
	if r.Code != 0 {
		code = fmt.Sprint(r.Code)
	}
	dup := ""
	if r.Duplicate {
		dup = "yes"
	}
	return []string{fmt.Sprint(r.Line), r.Email, r.State, r.Class, code, r.Enhanced,
		oneLine(r.Text), r.Host, r.Via, fmt.Sprint(r.Attempts), r.MessageID, dup, r.Advice, r.Updated,
		r.Bounced, r.Complained}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
