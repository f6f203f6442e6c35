package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailout/internal/store/postgres"
)

// FleetStore is a store that lists the workers of a fleet (the PostgreSQL
// store, *postgres.DB); New adds the fleet's gauges when the campaign
// service's store is one.
type FleetStore interface {
	Workers(ctx context.Context, at time.Time) ([]postgres.Worker, error)
}

// fleetCollector reports the fleet as `mailout workers` shows it, as
// totals (a label per worker would grow with every restart): workers live
// and gone, and over the live ones the rows claimed, the send rate and the
// campaigns being sent, as of their last heartbeats.
type fleetCollector struct {
	st FleetStore
}

var (
	fleetWorkersDesc = prometheus.NewDesc("mailout_fleet_workers",
		"Workers of the fleet by state: live, or gone (stopped, or three heartbeats missed).", []string{"state"}, nil)
	fleetClaimedDesc = prometheus.NewDesc("mailout_fleet_claimed_recipients",
		"Recipients claimed (being sent) by the live workers at their last heartbeats.", nil, nil)
	fleetRateDesc = prometheus.NewDesc("mailout_fleet_send_rate",
		"Message attempts per second of the live workers together, over their last heartbeat intervals.", nil, nil)
	fleetCampaignsDesc = prometheus.NewDesc("mailout_fleet_campaigns",
		"Campaigns being sent by at least one live worker.", nil, nil)
)

func (f *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- fleetWorkersDesc
	ch <- fleetClaimedDesc
	ch <- fleetRateDesc
	ch <- fleetCampaignsDesc
}

func (f *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := f.st.Workers(ctx, time.Now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(fleetWorkersDesc, err)
		return
	}
	var live, gone, claimed int
	var rate float64
	campaigns := map[int64]bool{}
	for _, w := range ws {
		if w.Gone {
			gone++
			continue
		}
		live++
		claimed += w.Claimed
		rate += w.Rate
		for _, id := range w.Campaigns {
			campaigns[id] = true
		}
	}
	ch <- prometheus.MustNewConstMetric(fleetWorkersDesc, prometheus.GaugeValue, float64(live), "live")
	ch <- prometheus.MustNewConstMetric(fleetWorkersDesc, prometheus.GaugeValue, float64(gone), "gone")
	ch <- prometheus.MustNewConstMetric(fleetClaimedDesc, prometheus.GaugeValue, float64(claimed))
	ch <- prometheus.MustNewConstMetric(fleetRateDesc, prometheus.GaugeValue, rate)
	ch <- prometheus.MustNewConstMetric(fleetCampaignsDesc, prometheus.GaugeValue, float64(len(campaigns)))
}
