// Package metrics exposes mailout's Prometheus metrics on /metrics: the
// messages by outcome class and route, the queue's depth by state, the
// send rate, the SMTP reply latency and the circuit breaker's trips. It is
// fed by the campaign service (Observe) whichever front end runs a
// campaign, and reads the queue's depth from the store at each scrape. It
// keeps its own registry, never the process-wide default.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mailout/internal/campaign"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// Metrics are the metrics of one campaign service.
type Metrics struct {
	reg      *prometheus.Registry
	messages *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	trips    *prometheus.CounterVec
	dups     *prometheus.CounterVec
	rate     *rateWindow
	stop     func()
}

// states are the queue states the depth gauge reports, always all of them.
var states = []queue.State{queue.Pending, queue.Sending, queue.Deferred, queue.Delivered, queue.Failed, queue.Suppressed}

// New registers the metrics and starts observing svc's runs; Close stops.
func New(svc *campaign.Service) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailout_messages_total",
			Help: "Message attempts by outcome class and route.",
		}, []string{"class", "route"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mailout_smtp_reply_seconds",
			Help: "Time from handing a message over to the server's final reply, by route.",
			// From a fast relay on the LAN to a receiver near the RFC
			// 5321 §4.5.3.2.6 ten-minute limit on the final reply.
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600},
		}, []string{"route"}),
		trips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailout_breaker_trips_total",
			Help: "Campaigns paused by the circuit breaker for a fault of the route, by route.",
		}, []string{"route"}),
		dups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailout_possible_duplicates_total",
			Help: "Message attempts that may have been delivered although no reply said so (the session ended after the data was sent), by route: sent again, their recipients may get the message twice.",
		}, []string{"route"}),
		rate: newRateWindow(time.Minute, time.Now),
	}
	sendRate := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mailout_send_rate",
		Help: "Message attempts per second over the last minute.",
	}, m.rate.perSecond)
	m.reg.MustRegister(m.messages, m.latency, m.trips, m.dups, sendRate, &queueCollector{st: svc.Store()})
	if fs, ok := svc.Store().(FleetStore); ok {
		m.reg.MustRegister(&fleetCollector{st: fs})
	}
	m.stop = svc.Observe(m.observe)
	return m
}

// Registry is the registry the metrics are in, for a server that adds its
// own (Go runtime, process).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Close stops observing the campaign service.
func (m *Metrics) Close() { m.stop() }

func (m *Metrics) observe(ev campaign.Event) {
	route := string(ev.Route)
	switch {
	case ev.Attempt != nil:
		m.messages.WithLabelValues(string(ev.Attempt.Class), route).Inc()
		m.rate.add(1)
		if ev.Attempt.Latency > 0 {
			m.latency.WithLabelValues(route).Observe(ev.Attempt.Latency.Seconds())
		}
		if ev.Attempt.PossibleDuplicate {
			m.dups.WithLabelValues(route).Inc()
		}
	case ev.Tripped:
		m.trips.WithLabelValues(route).Inc()
	}
}

// queueCollector reports the recipients of the campaigns that still have
// work (running or paused) by state, read from the store at each scrape.
type queueCollector struct {
	st store.Store
}

var queueDesc = prometheus.NewDesc("mailout_queue_recipients",
	"Recipients of running and paused campaigns, by delivery state.", []string{"state"}, nil)

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDesc }

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	by := map[queue.State]int{}
	cs, err := q.st.Campaigns(ctx)
	for i := 0; err == nil && i < len(cs); i++ {
		if s := cs[i].Status; s != store.CampaignRunning && s != store.CampaignPaused {
			continue
		}
		var n *store.Counts
		if n, err = q.st.Counts(ctx, cs[i].ID); err == nil {
			for st, k := range n.ByState {
				by[st] += k
			}
		}
	}
	if err != nil {
		// A scrape that cannot read the store says so instead of
		// reporting an empty queue.
		ch <- prometheus.NewInvalidMetric(queueDesc, err)
		return
	}
	for _, st := range states {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(by[st]), string(st))
	}
}

// rateWindow counts events per second over a sliding window.
type rateWindow struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets []int64 // by second, modulo len
	stamps  []int64 // the unix second each bucket counts
}

func newRateWindow(d time.Duration, now func() time.Time) *rateWindow {
	n := int(d / time.Second)
	return &rateWindow{now: now, buckets: make([]int64, n), stamps: make([]int64, n)}
}

func (r *rateWindow) add(k int64) {
	sec := r.now().Unix()
	i := int(sec % int64(len(r.buckets)))
	r.mu.Lock()
	if r.stamps[i] != sec {
		r.stamps[i], r.buckets[i] = sec, 0
	}
	r.buckets[i] += k
	r.mu.Unlock()
}

// perSecond is the mean rate over the window's seconds.
func (r *rateWindow) perSecond() float64 {
	sec := r.now().Unix()
	n := int64(len(r.buckets))
	var sum int64
	r.mu.Lock()
	for i, s := range r.stamps {
		if s > sec-n && s <= sec {
			sum += r.buckets[i]
		}
	}
	r.mu.Unlock()
	return float64(sum) / float64(n)
}
