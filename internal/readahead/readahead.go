// Package readahead turns a push iterator into a pull one, like
// iter.Pull2, but runs the iteration ahead of the caller in a goroutine of
// its own, a batch of pairs at a time.
//
// An import reads and checks a list (CSV parsing, address checks, the
// duplicate filter) while the store inserts the rows before: with
// iter.Pull2 the two take turns on one core; with Pull2 here they overlap
// on two. The iteration runs at most Depth batches ahead of the caller.
package readahead

import (
	"iter"
	"sync"
)

const (
	// Batch is the number of pairs handed over at once: the goroutines
	// meet once per batch, not once per pair.
	Batch = 256
	// Depth is the number of full batches the iteration may run ahead.
	Depth = 4
)

// Pull2 returns next and stop functions as iter.Pull2 does: next returns
// the sequence's pairs in order and false after the last; stop ends the
// iteration (its yield returns false) and returns once seq has returned,
// so whatever seq reads from may be closed after it. stop must be called,
// and may be called more than once. next and stop are for one goroutine.
// If seq panics, the panic is raised again in the caller's goroutine, by
// the next call to next or stop, as iter.Pull2 does: a bug met by one
// list fails that import, not the process serving it.
//
// Unlike iter.Pull2, seq runs concurrently with the caller between calls
// to next: it must not share unsynchronised state with the caller, other
// than what the caller reads after stop returns. And stop waits for seq
// to reach its next yield: a seq blocked in a read from a slow source
// (a client's upload) holds stop up until that read returns, which the
// source's own deadline bounds.
func Pull2[K, V any](seq iter.Seq2[K, V]) (next func() (K, V, bool), stop func()) {
	type pair struct {
		k K
		v V
	}
	batches := make(chan []pair, Depth)
	quit := make(chan struct{})
	done := make(chan struct{})
	var panicked any // seq's panic; read after batches or done is closed
	go func() {
		defer close(done)
		defer close(batches)
		buf := make([]pair, 0, Batch)
		send := func() bool {
			select {
			case batches <- buf:
				buf = make([]pair, 0, Batch)
				return true
			case <-quit:
				return false
			}
		}
		stopped := false
		func() {
			// The pairs yielded before a panic still go to the caller
			// first, below.
			defer func() { panicked = recover() }()
			seq(func(k K, v V) bool {
				buf = append(buf, pair{k, v})
				if len(buf) < Batch {
					return true
				}
				stopped = !send()
				return !stopped
			})
		}()
		if !stopped && len(buf) > 0 {
			send()
		}
	}()

	var (
		cur     []pair
		stopped bool
		raised  bool // the panic of seq went to the caller
	)
	raise := func() {
		if panicked != nil && !raised {
			raised = true
			panic(panicked)
		}
	}
	next = func() (K, V, bool) {
		for len(cur) == 0 {
			b, ok := <-batches
			if !ok && !stopped {
				raise()
			}
			if !ok || stopped {
				var (
					k K
					v V
				)
				return k, v, false
			}
			cur = b
		}
		p := cur[0]
		cur[0] = pair{} // let the pair go once the caller has it
		cur = cur[1:]
		return p.k, p.v, true
	}
	var once sync.Once
	stop = func() {
		once.Do(func() { close(quit) })
		<-done
		stopped, cur = true, nil
		raise()
	}
	return next, stop
}
