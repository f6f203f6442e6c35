package transport

import (
	"context"
	"errors"
	"net"
	"strconv"

	"mailout/internal/outcome"
	"mailout/internal/route"
	"mailout/internal/smtpclient"
)

// DeliverBatch groups msgs by the mail server each would go to first (the
// most preferred MX address not marked down) and sends each group on one
// session of that server with pipelining across messages (RFC 2920 §3.1),
// as Relay.DeliverBatch does. A message whose server cannot be reached or
// whose session ended before it takes Deliver's path alone, which moves on
// to the next MX host (RFC 5321 §5.1).
func (d *Direct) DeliverBatch(ctx context.Context, msgs []*Message, done func(i int, r Result)) []Result {
	out := make([]Result, len(msgs))
	emit := func(k int) {
		if done != nil {
			done(k, out[k])
		}
	}
	type target struct {
		host, addr string
		idx        []int
	}
	var order []*target
	byAddr := map[string]*target{}
	for i, m := range msgs {
		hosts, err := d.cfg.Resolver.Lookup(ctx, m.Domain)
		if err != nil {
			out[i] = Result{Result: outcome.Classify(outcome.Attempt{Route: route.Direct, Step: outcome.StepResolve, Host: m.Domain, Err: err}), Via: "direct"}
			emit(i)
			continue
		}
		var tg *target
	pick:
		for _, h := range hosts {
			for _, a := range h.Addrs {
				addr := net.JoinHostPort(a.String(), strconv.Itoa(d.cfg.Port))
				if _, down := d.isDown(addr); down {
					continue
				}
				if tg = byAddr[addr]; tg == nil {
					tg = &target{host: h.Name, addr: addr}
					byAddr[addr] = tg
					order = append(order, tg)
				}
				break pick
			}
		}
		if tg == nil {
			out[i] = d.Deliver(ctx, m) // every address is down: Deliver says so
			emit(i)
			continue
		}
		tg.idx = append(tg.idx, i)
	}
	for _, tg := range order {
		d.sendGroup(ctx, tg.host, tg.addr, msgs, tg.idx, out, emit)
	}
	return out
}

// sendGroup sends msgs[idx] on sessions of one server address, filling out
// and calling emit(k) as soon as out[k] is set.
func (d *Direct) sendGroup(ctx context.Context, host, addr string, msgs []*Message, idx []int, out []Result, emit func(k int)) {
	via := "direct:" + host
	for len(idx) > 0 {
		if smtpclient.Stopping(ctx) {
			for _, k := range idx {
				out[k] = notStarted(via)
				emit(k)
			}
			return
		}
		s, reused, err := d.get(ctx, host, addr, false)
		if err != nil {
			var se *smtpclient.Error
			if errors.As(err, &se) && se.Code == 0 && (se.Command == "connect" || se.Command == "") {
				d.markDown(addr, d.classify(host, err, outcome.StepConnect))
			}
			// Deliver tries the next MX host for each of them.
			for _, k := range idx {
				out[k] = d.Deliver(ctx, msgs[k])
				emit(k)
			}
			return
		}
		var alone, retry []int
		cur := idx
		n := s.sendMany(ctx, d.cfg.PerConnection, msgs, cur, d.cfg.Now, func(j int, tr smtpclient.TxResult) {
			err := txError(tr)
			switch {
			case errors.Is(err, smtpclient.ErrStopped):
				out[cur[j]] = notStarted(via)
				emit(cur[j])
				return
			case errors.Is(err, smtpclient.ErrNotAttempted):
				// Nothing of it was sent: it goes alone, on another session.
				alone = append(alone, cur[j])
				return
			case retryFresh(ctx, reused || j > 0, map[int]bool{}, cur[j], err):
				// The session ended at its MAIL: alone, on a new session.
				retry = append(retry, cur[j])
				return
			}
			s.sent++
			out[cur[j]] = Result{Result: d.result(host, addr, s, err), Via: via}
			emit(cur[j])
		})
		d.put(ctx, addr, s)
		if smtpclient.Stopping(ctx) {
			// Nothing of these was sent: they are given back.
			for _, k := range append(retry, alone...) {
				out[k] = notStarted(via)
				emit(k)
			}
			retry, alone = nil, nil
		}
		for _, k := range retry {
			out[k] = d.deliver(ctx, msgs[k], true)
			emit(k)
		}
		for _, k := range alone {
			out[k] = d.Deliver(ctx, msgs[k])
			emit(k)
		}
		idx = cur[n:]
	}
}

var _ Batcher = (*Direct)(nil)
