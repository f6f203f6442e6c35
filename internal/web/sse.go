package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// progressEvent is the data of one server-sent event of a campaign's
// progress, read by static/progress.js.
type progressEvent struct {
	Status     string `json:"status"`
	StatusText string `json:"status_text"`
	Total      int    `json:"total"`
	Delivered  int    `json:"delivered"`
	Failed     int    `json:"failed"`
	Deferred   int    `json:"deferred"`
	Suppressed int    `json:"suppressed"`
	Pending    int    `json:"pending"`
	Done       int    `json:"done"`
	Percent    int    `json:"percent"`
	Rate       string `json:"rate,omitempty"`
	ETA        string `json:"eta,omitempty"`
}

// events streams the campaign's progress as server-sent events ("progress"
// events, then one "end" event once the campaign is paused, done or
// cancelled),
// wherever it is sent: from a run in this process as it reports, from
// another process by the counts the campaign service reads every second.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	c, ok := s.campaignOf(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	tr := catalogues[langOf(r)]

	latest := make(chan campaign.Progress, 1)
	stop := s.cfg.Campaigns.Watch(c.ID, func(p campaign.Progress) {
		for { // keep only the latest value: a slow client never blocks a run
			select {
			case latest <- p:
				return
			default:
			}
			select {
			case <-latest:
			default:
			}
		}
	})
	defer stop()

	send := func(name string, ev progressEvent) bool {
		b, _ := json.Marshal(ev)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// current reads the stored campaign and counts; p, when a run
	// reported it, gives the rate.
	current := func(p *campaign.Progress) (progressEvent, bool, error) {
		bg := context.WithoutCancel(ctx)
		// Whether some process sends it is read before the status: a
		// run stores its final status before it lets go of the campaign.
		sent := s.runner.Running(c.ID) || !s.cfg.Campaigns.Interrupted(&store.Campaign{ID: c.ID, Status: store.CampaignRunning})
		fresh, err := s.cfg.Campaigns.Store().Campaign(bg, c.ID)
		if err != nil {
			return progressEvent{}, false, err
		}
		n, err := s.cfg.Campaigns.Store().Counts(bg, c.ID)
		if err != nil {
			return progressEvent{}, false, err
		}
		ev := eventOf(n)
		key := "status." + string(fresh.Status)
		if fresh.Status == store.CampaignRunning && !sent {
			key = "status.interrupted"
		}
		ev.Status, ev.StatusText = string(fresh.Status), tr.text(key)
		if p != nil {
			ev.Rate, ev.ETA = rateETA(*p, s.cfg.Now())
		}
		// An interrupted campaign is still "running" in the database:
		// the stream stays open for the run that resumes it.
		return ev, fresh.Status == store.CampaignRunning, nil
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last *campaign.Progress
	for {
		ev, running, err := current(last)
		if err != nil {
			s.log.Warn("events", "campaign", c.ID, "err", err)
			return
		}
		if !send("progress", ev) {
			return
		}
		if !running {
			send("end", ev)
			return
		}
		select {
		case <-ctx.Done():
			return
		case p := <-latest:
			last = &p
		case <-tick.C:
		}
	}
}

// eventOf is the event of stored counts.
func eventOf(n *store.Counts) progressEvent {
	ev := progressEvent{
		Total: n.Total, Delivered: n.ByState[queue.Delivered], Failed: n.ByState[queue.Failed],
		Deferred: n.ByState[queue.Deferred], Suppressed: n.ByState[queue.Suppressed],
		Pending: n.ByState[queue.Pending] + n.ByState[queue.Sending],
	}
	ev.Done = ev.Delivered + ev.Failed + ev.Suppressed
	ev.Percent = pct(ev.Done, ev.Total)
	return ev
}
