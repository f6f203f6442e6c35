package readahead

import (
	"iter"
	"testing"
)

func count(n int, yielded *int, returned *bool) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		defer func() { *returned = true }()
		for i := range n {
			*yielded = i + 1
			if !yield(i, string(rune('a'+i%26))) {
				return
			}
		}
	}
}

// TestPull2InOrder: every pair, in order, across batches, then false.
func TestPull2InOrder(t *testing.T) {
	for _, n := range []int{0, 1, Batch - 1, Batch, Batch + 1, 10*Batch + 7} {
		var yielded int
		var returned bool
		next, stop := Pull2(count(n, &yielded, &returned))
		for i := range n {
			k, v, ok := next()
			if !ok || k != i || v != string(rune('a'+i%26)) {
				t.Fatalf("n=%d: pair %d = %d, %q, %v", n, i, k, v, ok)
			}
		}
		if k, v, ok := next(); ok {
			t.Fatalf("n=%d: a pair after the last: %d, %q", n, k, v)
		}
		if _, _, ok := next(); ok {
			t.Fatalf("n=%d: next after the end returned a pair", n)
		}
		stop()
		if !returned || yielded != n {
			t.Errorf("n=%d: seq yielded %d and returned %v", n, yielded, returned)
		}
	}
}

// TestPull2StopEarly: stop ends the iteration, which reads at most Depth
// batches beyond what the caller took, and seq has returned when stop does.
func TestPull2StopEarly(t *testing.T) {
	var yielded int
	var returned bool
	next, stop := Pull2(count(1_000_000, &yielded, &returned))
	for range 10 {
		if _, _, ok := next(); !ok {
			t.Fatal("sequence ended early")
		}
	}
	stop()
	stop() // a second stop is harmless
	if !returned {
		t.Fatal("seq still running after stop")
	}
	// One batch taken, Depth queued, one being filled when stop came.
	if max := (Depth + 2) * Batch; yielded > max {
		t.Errorf("seq yielded %d pairs for 10 taken, more than %d", yielded, max)
	}
	if _, _, ok := next(); ok {
		t.Error("next after stop returned a pair")
	}
}

// TestPull2StopUnread: stop before any next.
func TestPull2StopUnread(t *testing.T) {
	var yielded int
	var returned bool
	_, stop := Pull2(count(1_000_000, &yielded, &returned))
	stop()
	if !returned {
		t.Fatal("seq still running after stop")
	}
}

// A panic of seq reaches the caller's goroutine once the pairs before it
// are taken, and only once.
func TestPull2Panic(t *testing.T) {
	seq := func(yield func(int, string) bool) {
		for i := range Batch + 3 {
			if !yield(i, "") {
				return
			}
		}
		panic("bad row")
	}
	next, stop := Pull2(seq)
	for i := range Batch + 3 {
		if k, _, ok := next(); !ok || k != i {
			t.Fatalf("pair %d = %d, %v", i, k, ok)
		}
	}
	func() {
		defer func() {
			if p := recover(); p != "bad row" {
				t.Errorf("next after the last pair: recovered %v, want the panic of seq", p)
			}
		}()
		next()
		t.Error("next did not panic")
	}()
	stop() // the panic went to the caller already
	if _, _, ok := next(); ok {
		t.Error("next after stop returned a pair")
	}
}

// A panic of seq that the caller never reached comes out of stop.
func TestPull2PanicAtStop(t *testing.T) {
	next, stop := Pull2(func(yield func(int, string) bool) {
		yield(1, "")
		panic("bad row")
	})
	if _, _, ok := next(); !ok {
		t.Fatal("first pair missing")
	}
	defer func() {
		if p := recover(); p != "bad row" {
			t.Errorf("stop: recovered %v, want the panic of seq", p)
		}
	}()
	stop()
	t.Error("stop did not panic")
}
