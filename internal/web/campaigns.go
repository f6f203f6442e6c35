package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/doctor"
	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/report"
	"mailout/internal/route"
	"mailout/internal/scheduler"
	"mailout/internal/store"
)

// campaignRow is one line of the campaign list.
type campaignRow struct {
	C      store.Campaign
	Counts *store.Counts
	Done   int
	Status string
}

func (s *server) campaignList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st := s.cfg.Campaigns.Store()
	cs, err := st.Campaigns(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rows := make([]campaignRow, 0, len(cs))
	for i := range cs {
		n, err := st.Counts(ctx, cs[i].ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		rows = append(rows, campaignRow{C: cs[i], Counts: n, Done: finished(n), Status: s.statusKey(&cs[i])})
	}
	s.render(w, r, http.StatusOK, "campaigns", "campaigns.title", rows, "")
}

// finished counts the recipients that need nothing more.
func finished(n *store.Counts) int {
	return n.ByState[queue.Delivered] + n.ByState[queue.Failed] + n.ByState[queue.Suppressed]
}

// statusKey is the catalogue key of the campaign's status as a person
// reads it: a "running" campaign that no process sends is interrupted.
func (s *server) statusKey(c *store.Campaign) string {
	if c.Status == store.CampaignRunning && !s.runner.Running(c.ID) && s.cfg.Campaigns.Interrupted(c) {
		return "status.interrupted"
	}
	return "status." + string(c.Status)
}

// classRow is a failure class of a campaign with its count and advice.
type classRow struct {
	Class  outcome.Class
	Count  int
	Advice string
}

// checkRow is a doctor's finding as the page shows it.
type checkRow struct {
	doctor.Finding
	Title string
}

// diagnosisView is a doctor's report in one language.
type diagnosisView struct {
	Report       *doctor.Report
	Checks       []checkRow
	VerdictTitle string
	Advice       string
}

func newDiagnosisView(rep *doctor.Report, lang string) *diagnosisView {
	v := &diagnosisView{Report: rep, VerdictTitle: rep.Verdict.Title[lang], Advice: rep.Advice(lang)}
	for _, f := range rep.Findings {
		v.Checks = append(v.Checks, checkRow{Finding: f, Title: doctor.CheckTitle(f.ID, lang)})
	}
	return v
}

// campaignView is the campaign page.
type campaignView struct {
	C *store.Campaign
	// Unsubscribed counts the recipients who used the campaign's
	// unsubscribe link.
	Unsubscribed int
	Route        route.Route
	Status       string
	Counts       *store.Counts
	Ev           progressEvent
	Classes      []classRow
	Done         int
	Percent      int
	Rate         string // messages per minute, "" when unknown
	ETA          string
	Diagnosis    *diagnosisView
	// Fix is the relay setting the diagnosis suggests, "" if none.
	Fix string
	// ScheduledFor is the start time of a campaign that waits for it
	// (server's local time), "" otherwise.
	ScheduledFor string
	CanStart     bool
	CanResume    bool
	CanPause     bool
	CanCancel    bool
	Elsewhere    bool
	Sandbox      bool
	// Complaints is the complaint rate, nil before a delivery.
	Complaints *complaintView
}

func (s *server) campaignPage(w http.ResponseWriter, r *http.Request) {
	c, ok := s.campaignOf(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	n, err := s.cfg.Campaigns.Store().Counts(ctx, c.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	lang := langOf(r)
	v := &campaignView{C: c, Route: campaign.RouteOf(c), Status: s.statusKey(c), Counts: n, Done: finished(n)}
	v.Percent = pct(v.Done, n.Total)
	v.Ev = eventOf(n)
	if v.Unsubscribed, err = s.cfg.Campaigns.Unsubscribed(ctx, c); err != nil {
		s.fail(w, r, err)
		return
	}
	fb, err := s.cfg.Campaigns.Store().Feedback(ctx, c.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.Complaints = newComplaintView(fb, lang)
	for _, cl := range outcome.Classes {
		if k := n.ByClass[cl]; k > 0 {
			v.Classes = append(v.Classes, classRow{Class: cl, Count: k, Advice: outcome.Advice(cl, v.Route, lang)})
		}
	}
	if p, ok := s.runner.Progress(c.ID); ok {
		v.Rate, v.ETA = rateETA(p, s.cfg.Now())
	}
	here := s.runner.Running(c.ID)
	interrupted := c.Status == store.CampaignRunning && !here && s.cfg.Campaigns.Interrupted(c)
	v.Elsewhere = c.Status == store.CampaignRunning && !here && !interrupted
	v.CanStart = interrupted
	if c.Status == store.CampaignRunning && campaign.Scheduled(c, s.cfg.Now()) {
		// The runner starts it at its time; Start now would do nothing.
		v.ScheduledFor, v.CanStart = c.StartAt.Local().Format(time.DateTime), false
	}
	v.CanResume = c.Status == store.CampaignPaused
	v.CanPause = c.Status == store.CampaignRunning && !interrupted
	v.CanCancel = c.Status == store.CampaignRunning || c.Status == store.CampaignPaused
	v.Sandbox = v.Route == route.Sandbox
	if pausedByBreaker(c) && len(c.Diagnosis) > 0 {
		if rep, err := doctor.ParseReport(c.Diagnosis); err == nil {
			v.Diagnosis = newDiagnosisView(rep, lang)
			v.Fix = campaign.FixOf(c)
		}
	}
	s.render(w, r, http.StatusOK, "campaign", "campaign.title", v, "")
}

// pausedByBreaker: the campaign is paused by its breaker (a fault of the
// route stopped the run), the only pause its stored diagnosis is about.
// The diagnosis stays stored after a resume, so a later pause by the user
// (campaign.ReasonPaused) or a run interrupted by a signal or a shutdown
// (the scheduler's "interrupted") must not show it again: the status
// reason tells them apart, the breaker's being the outcome that tripped it.
func pausedByBreaker(c *store.Campaign) bool {
	switch c.StatusReason {
	case "", campaign.ReasonPaused, string(scheduler.StopInterrupted):
		return false
	}
	return c.Status == store.CampaignPaused
}

func pct(part, total int) int {
	if total <= 0 {
		return 0
	}
	return part * 100 / total
}

// rateETA is the run's speed in messages per minute and the time left at
// that speed, from a run's progress; "" when the run is too young to say.
func rateETA(p campaign.Progress, now time.Time) (string, string) {
	el := now.Sub(p.Started)
	if p.Started.IsZero() || p.Sent == 0 || el < time.Second {
		return "", ""
	}
	perMin := float64(p.Sent) / el.Minutes()
	left := p.Pending + p.Deferred
	eta := time.Duration(float64(left) / perMin * float64(time.Minute)).Round(time.Second)
	return strconv.FormatFloat(perMin, 'f', 1, 64), eta.String()
}

// campaignOf reads the campaign of the path's {id}, or answers 404.
func (s *server) campaignOf(w http.ResponseWriter, r *http.Request) (*store.Campaign, bool) {
	id, ok := idParam(r, "id")
	if !ok {
		s.notFound(w, r)
		return nil, false
	}
	c, err := s.cfg.Campaigns.Store().Campaign(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return c, true
}

type action int

const (
	actionStart action = iota
	actionPause
	actionCancel
)

// control starts (or resumes), pauses or cancels a campaign, here or in
// the process that sends it, and goes back to its page.
func (s *server) control(a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.campaignOf(w, r)
		if !ok {
			return
		}
		var err error
		done := ""
		switch a {
		case actionStart:
			err, done = s.runner.Start(r.Context(), c.ID), "started"
		case actionPause:
			err, done = s.cfg.Campaigns.Pause(r.Context(), c.ID), "paused"
		case actionCancel:
			err, done = s.cfg.Campaigns.Cancel(r.Context(), c.ID), "cancelled"
		}
		if s.actionFailed(w, r, err) {
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/campaigns/%d?done=%s", c.ID, done), http.StatusSeeOther)
	}
}

// actionFailed answers an action the campaign's state refuses with 409
// and its reason; other errors are failures.
func (s *server) actionFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, campaign.ErrFinal), errors.Is(err, ErrNotStartable):
		s.render(w, r, http.StatusConflict, "error", "error.conflict", nil, "error.final")
	case errors.Is(err, ErrRunningElsewhere), errors.Is(err, campaign.ErrLocked):
		s.render(w, r, http.StatusConflict, "error", "error.conflict", nil, "error.elsewhere")
	default:
		s.fail(w, r, err)
	}
	return true
}

// fix applies the relay setting the paused campaign's diagnosis
// suggests, and resumes it.
func (s *server) fix(w http.ResponseWriter, r *http.Request) {
	c, ok := s.campaignOf(w, r)
	if !ok {
		return
	}
	if !pausedByBreaker(c) {
		// An old diagnosis's fix, after a pause the breaker did not make.
		s.render(w, r, http.StatusConflict, "error", "error.conflict", nil, "error.nofix")
		return
	}
	if _, err := s.cfg.Campaigns.ApplyFix(r.Context(), c.ID); err != nil {
		if errors.Is(err, campaign.ErrNoFix) {
			s.render(w, r, http.StatusConflict, "error", "error.conflict", nil, "error.nofix")
			return
		}
		s.fail(w, r, err)
		return
	}
	if s.actionFailed(w, r, s.runner.Start(r.Context(), c.ID)) {
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/campaigns/%d?done=fixed", c.ID), http.StatusSeeOther)
}

// requeue sends the failed recipients of the chosen class (or all) again:
// they go back to pending and the campaign is started.
func (s *server) requeue(w http.ResponseWriter, r *http.Request) {
	c, ok := s.campaignOf(w, r)
	if !ok {
		return
	}
	var classes []outcome.Class
	if cl := r.PostFormValue("class"); cl != "" {
		if !slices.Contains(outcome.Classes, outcome.Class(cl)) {
			http.Error(w, "unknown class", http.StatusBadRequest)
			return
		}
		classes = []outcome.Class{outcome.Class(cl)}
	}
	if c.Status == store.CampaignCancelled {
		s.actionFailed(w, r, campaign.ErrFinal)
		return
	}
	if _, err := s.cfg.Campaigns.Requeue(r.Context(), c.ID, classes); err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.runner.Running(c.ID) {
		if err := s.runner.Start(r.Context(), c.ID); s.actionFailed(w, r, err) {
			return
		}
	}
	http.Redirect(w, r, fmt.Sprintf("/campaigns/%d?done=requeued", c.ID), http.StatusSeeOther)
}

// pageSize is how many recipients the log shows per page.
const pageSize = 50

// recipientsView is a page of the per-recipient log.
type recipientsView struct {
	C       *store.Campaign
	Rows    []report.Row
	State   string
	Class   string
	Page    int
	Prev    string // query of the previous page, "" on the first
	Next    string
	Export  string // query of the CSV export with the same filters
	States  []queue.State
	Classes []outcome.Class
}

// filterOf reads the log's filters (state, class) from the query.
func filterOf(q url.Values) (store.DeliveryFilter, string, string, bool) {
	var f store.DeliveryFilter
	st, cl := q.Get("state"), q.Get("class")
	if st != "" {
		if !slices.Contains(queue.States, queue.State(st)) {
			return f, st, cl, false
		}
		f.States = []queue.State{queue.State(st)}
	}
	if cl != "" {
		if !slices.Contains(outcome.Classes, outcome.Class(cl)) {
			return f, st, cl, false
		}
		f.Classes = []outcome.Class{outcome.Class(cl)}
	}
	return f, st, cl, true
}

func (s *server) recipientsPage(w http.ResponseWriter, r *http.Request) {
	c, ok := s.campaignOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f, st, cl, ok := filterOf(q)
	if !ok {
		http.Error(w, "unknown state or class", http.StatusBadRequest)
		return
	}
	pageNo, _ := strconv.Atoi(q.Get("page"))
	pageNo = max(pageNo, 1)
	v := &recipientsView{C: c, State: st, Class: cl, Page: pageNo, States: queue.States, Classes: outcome.Classes}
	skip, more := (pageNo-1)*pageSize, false
	lang := langOf(r)
	errFull := errors.New("page full")
	err := s.cfg.Campaigns.Store().Deliveries(r.Context(), c.ID, f, func(d *store.Delivery) error {
		if skip > 0 {
			skip--
			return nil
		}
		if len(v.Rows) == pageSize {
			more = true
			return errFull
		}
		v.Rows = append(v.Rows, report.NewRow(d, campaign.RouteOf(c), lang))
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		s.fail(w, r, err)
		return
	}
	query := func(p int) string {
		u := url.Values{}
		if st != "" {
			u.Set("state", st)
		}
		if cl != "" {
			u.Set("class", cl)
		}
		if p > 0 {
			u.Set("page", strconv.Itoa(p))
		}
		return u.Encode()
	}
	if pageNo > 1 {
		v.Prev = "?" + query(pageNo-1)
	}
	if more {
		v.Next = "?" + query(pageNo+1)
	}
	if e := query(0); e != "" {
		v.Export = "?" + e
	}
	s.render(w, r, http.StatusOK, "recipients", "recipients.title", v, "")
}

// exportCSV downloads the per-recipient report as CSV, the command line's
// mailout report --format csv, with the log's filters.
func (s *server) exportCSV(w http.ResponseWriter, r *http.Request) {
	c, ok := s.campaignOf(w, r)
	if !ok {
		return
	}
	f, _, _, ok := filterOf(r.URL.Query())
	if !ok {
		http.Error(w, "unknown state or class", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "campaign-"+strconv.FormatInt(c.ID, 10)+".csv"))
	rw, err := report.NewWriter(w, report.FormatCSV, false)
	if err != nil {
		s.log.Error("export", "err", err)
		return
	}
	lang := langOf(r)
	err = s.cfg.Campaigns.Store().Deliveries(r.Context(), c.ID, f, func(d *store.Delivery) error {
		return rw.Write(report.NewRow(d, campaign.RouteOf(c), lang))
	})
	if err == nil {
		err = rw.Close()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("export", "campaign", c.ID, "err", err)
	}
}
