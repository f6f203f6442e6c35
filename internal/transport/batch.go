package transport

import (
	"context"
	"errors"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/smtpclient"
)

// Batcher is a Transport that can take several messages at once and send
// them back to back on one session: each message's final "." goes out with
// the next message's commands (RFC 2920 §3.1), so a message costs one round
// trip instead of two. Results are per message, in the order of msgs, each
// with Deliver's meaning. done, when not nil, is called once per message
// with its final result as soon as it is known, while later messages may
// still be on the wire: the caller records each delivery at once, so a
// crash never leaves more than the message in progress sent but unrecorded.
type Batcher interface {
	Transport
	DeliverBatch(ctx context.Context, msgs []*Message, done func(i int, r Result)) []Result
}

// DeliverBatch sends msgs through the first account that works; messages
// that fail for a reason of the account go on through the next account,
// as with Deliver, and are reported when that account is done with them.
func (r *Relay) DeliverBatch(ctx context.Context, msgs []*Message, done func(i int, r Result)) []Result {
	out := make([]Result, len(msgs))
	todo := make([]int, len(msgs))
	for i := range todo {
		todo[i] = i
	}
	for i := int(r.active.Load()); i < len(r.accounts) && len(todo) > 0; i++ {
		a := r.accounts[i]
		last := i+1 == len(r.accounts)
		r.batchVia(ctx, a, msgs, todo, out, func(k int) {
			if done != nil && (last || !accountFault(out[k].Result)) {
				done(k, out[k])
			}
		})
		if last {
			break
		}
		var again []int
		for _, k := range todo {
			if accountFault(out[k].Result) {
				again = append(again, k)
			}
		}
		if len(again) > 0 && r.active.CompareAndSwap(int32(i), int32(i+1)) {
			r.cfg.Logger.Warn("relay account failed; moving to the next one",
				"relay", a.acc.String(), "class", out[again[0]].Class, "smtp_code", out[again[0]].Code,
				"next", r.accounts[i+1].acc.String())
			r.pool.closeIdle(ctx, a.key, false)
		}
		todo = again
	}
	return out
}

// batchVia sends the messages msgs[idx] through account a, filling out and
// calling emit(k) as soon as out[k] is set. A message the session could not
// start (the session ended before it) goes on the next session; one whose
// session ended at its MAIL goes once on a fresh session (retryFresh).
// Every pass gives at least one message its result or uses up a message's
// one retry, so the loop ends.
func (r *Relay) batchVia(ctx context.Context, a *relayAccount, msgs []*Message, idx []int, out []Result, emit func(k int)) {
	via := "relay:" + a.acc.Host
	retried := map[int]bool{}
	fresh := false
	for len(idx) > 0 {
		if smtpclient.Stopping(ctx) {
			for _, k := range idx {
				out[k] = notStarted(via)
				emit(k)
			}
			return
		}
		s, reused, err := r.get(ctx, a, fresh)
		if err != nil {
			res := Result{Result: r.classify(a, err, outcome.StepConnect), Via: via}
			for _, k := range idx {
				out[k] = res
				emit(k)
			}
			return
		}
		var retry, again []int
		cur := idx
		n := s.sendMany(ctx, r.cfg.PerConnection, msgs, cur, r.cfg.Now, func(j int, tr smtpclient.TxResult) {
			err := txError(tr)
			switch {
			case errors.Is(err, smtpclient.ErrStopped):
				out[cur[j]] = notStarted(via)
				emit(cur[j])
				return
			case errors.Is(err, smtpclient.ErrNotAttempted):
				again = append(again, cur[j])
				return
			case retryFresh(ctx, reused || j > 0, retried, cur[j], err):
				retry = append(retry, cur[j])
				return
			}
			s.sent++
			out[cur[j]] = Result{Result: r.classify(a, err, outcome.StepMail), Via: via}
			emit(cur[j])
		})
		r.put(ctx, a, s)
		fresh = len(retry) > 0
		idx = append(append(retry, again...), cur[n:]...)
	}
}

// sendMany sends the first messages of msgs[idx] on s, as many as s may
// still carry under perConnection (0 = no cap; at least one), handing each
// transaction's result to handle as soon as it is known; it returns how
// many of idx went.
func (s *session) sendMany(ctx context.Context, perConnection int, msgs []*Message, idx []int, now func() time.Time, handle func(j int, tr smtpclient.TxResult)) int {
	n := len(idx)
	if perConnection > 0 {
		n = min(n, max(perConnection-s.sent, 1))
	}
	s.c.SendMany(ctx, transactions(msgs, idx[:n]), handle)
	s.lastUsed = now()
	return n
}

// retryFresh decides, and notes in retried, that message k goes once more
// on a fresh session: the session had carried a transaction before (used)
// and ended at this one's MAIL, with a 421 (RFC 5321 §3.8: the server
// closes the channel; often its cap of messages per connection) or with no
// reply at all (closed while idle, dropped by a NAT). Nothing of the
// message was sent, so there is no risk of a duplicate, and a new session
// usually takes it at once instead of a deferral with backoff. A message
// gets one such retry; when the fresh session fails too, that result
// stands.
func retryFresh(ctx context.Context, used bool, retried map[int]bool, k int, err error) bool {
	if !used || retried[k] || ctx.Err() != nil {
		return false
	}
	var se *smtpclient.Error
	if !errors.As(err, &se) || (se.Command != "MAIL" && se.Command != "RSET") {
		return false
	}
	if se.Code == smtpclient.CodeServiceNotAvailable || se.Code == 0 && se.Err != nil {
		retried[k] = true
		return true
	}
	return false
}

// transactions turns msgs[idx] into SMTP transactions, one recipient each.
func transactions(msgs []*Message, idx []int) []smtpclient.Tx {
	txs := make([]smtpclient.Tx, len(idx))
	for j, k := range idx {
		m := msgs[k]
		// RFC 6531 §3.4: a UTF-8 local part in the envelope needs
		// SMTPUTF8, whether or not the caller said so.
		utf8 := m.SMTPUTF8 || !isASCII(m.From) || !isASCII(m.To)
		txs[j] = smtpclient.Tx{From: m.From, Rcpts: []string{m.To}, Body: m.Data,
			Opt: smtpclient.SendOptions{SMTPUTF8: utf8, Size: len(m.Data)}}
	}
	return txs
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// txError is the outcome of a one-recipient transaction as one error: the
// transaction's, or else the recipient's refusal.
func txError(tr smtpclient.TxResult) error {
	if tr.Err == nil && len(tr.Rcpts) == 1 {
		return tr.Rcpts[0].Err
	}
	return tr.Err
}

var _ Batcher = (*Relay)(nil)
