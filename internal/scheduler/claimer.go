package scheduler

import (
	"context"
	"fmt"
	"time"

	"mailout/internal/queue"
	"mailout/internal/store"
)

// claimer claims the due deliveries in batches with a lease and hands them
// to the sessions, until nothing is due within the run's wait.
type claimer struct {
	cfg     *Config
	size    int // rows per claim
	started time.Time
	work    *handout
	rec     *recorder
}

// claimSize keeps a claim small enough to be sent well within the lease at
// the profile's rate.
func claimSize(cfg *Config) int {
	n := cfg.ClaimBatch
	if rate := cfg.Profile.Rate; rate > 0 {
		n = min(n, max(1, int(rate*cfg.Lease.Seconds()/4)))
	}
	return n
}

// loop feeds the handout until nothing is due within the wait, or ctx
// ends. A claim that could not be handed out is given back.
func (c *claimer) loop(ctx context.Context) error {
	cfg := c.cfg
	var deadline time.Time
	if cfg.Wait > 0 {
		deadline = c.started.Add(cfg.Wait)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := cfg.Clock.Now()
		batch, err := cfg.Store.Claim(ctx, cfg.Campaign.ID, cfg.Owner, now, cfg.Lease, c.size)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
		ds := make([]*store.Delivery, len(batch))
		for i := range batch {
			ds[i] = &batch[i]
		}
		if err := c.work.put(ctx, ds); err != nil {
			// Give back what was claimed but never handed out.
			for _, d := range ds {
				c.rec.refund(d)
			}
			return err
		}
		// A row released by a crash of an earlier run comes alone (see
		// store.Store.Claim): it is sent by itself and its result recorded
		// before anything else is claimed, so that if it crashes the
		// process again no other recipient has a crash counted with it.
		if len(batch) == 1 && batch[0].Crashes > 0 {
			if err := c.settle(ctx); err != nil {
				return err
			}
		}
		if len(batch) > 0 {
			continue
		}
		// Nothing due now: wait until in-flight results are recorded, then
		// look at what is left.
		if err := c.settle(ctx); err != nil {
			return err
		}
		counts, err := cfg.Store.Counts(ctx, cfg.Campaign.ID)
		if err != nil {
			if ctx.Err() != nil {
				// Stopped (pause, signal) while counting: not a store failure.
				return ctx.Err()
			}
			return fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
		open := counts.ByState[queue.Pending] + counts.ByState[queue.Deferred]
		if open == 0 {
			// Every row is final, or rows are still sending under someone
			// else's lease: the next run looks again when the first could
			// expire.
			return nil
		}
		next := counts.NextDue
		if next.IsZero() || deadline.IsZero() || next.After(deadline) {
			return nil
		}
		if err := cfg.Clock.Sleep(ctx, next.Sub(cfg.Clock.Now())); err != nil {
			return err
		}
	}
}

// settle waits until everything handed out was attempted and its results
// written.
func (c *claimer) settle(ctx context.Context) error {
	if err := c.work.waitIdle(ctx); err != nil {
		return err
	}
	return c.rec.flushNow()
}
