package recipient

import (
	"math"
	"runtime"
	"strconv"
	"testing"
)

// TestDedupeTable fills the table through many growths and checks that
// every address is new once and then reported with its first line.
func TestDedupeTable(t *testing.T) {
	const n = 200_000
	d := newDedupe()
	for i := range n {
		if first, dup := d.add("user"+strconv.Itoa(i)+"@example.com", i+2); dup {
			t.Fatalf("address %d: a duplicate of line %d on first sight", i, first)
		}
	}
	for i := range n {
		first, dup := d.add("user"+strconv.Itoa(i)+"@example.com", n+i+2)
		if !dup || first != i+2 {
			t.Fatalf("address %d again = line %d, dup %v; want line %d", i, first, dup, i+2)
		}
	}
	used := 0
	for i := range d.shards {
		s := &d.shards[i]
		if 4*s.used > 3*len(s.slots) {
			t.Errorf("shard %d: %d of %d slots used, above 3/4", i, s.used, len(s.slots))
		}
		used += s.used
	}
	if used != n {
		t.Errorf("%d slots used, want %d", used, n)
	}
}

// TestDedupeFarLine: a line beyond 32 bits is kept whole.
func TestDedupeFarLine(t *testing.T) {
	if math.MaxInt <= math.MaxUint32 {
		t.Skip("int has 32 bits here")
	}
	far := int(uint64(math.MaxUint32) + 7)
	d := newDedupe()
	d.add("near@example.com", 2)
	if _, dup := d.add("far@example.com", far); dup {
		t.Fatal("new address reported as a duplicate")
	}
	if first, dup := d.add("far@example.com", far+1); !dup || first != far {
		t.Errorf("far address again = line %d, dup %v; want line %d", first, dup, far)
	}
	if first, dup := d.add("near@example.com", far+2); !dup || first != 2 {
		t.Errorf("near address again = line %d, dup %v; want line 2", first, dup)
	}
}

// BenchmarkDedupe adds 1,000,000 distinct addresses and reports the heap
// the table keeps per address. Run: go test -run XXX -bench Dedupe ./internal/recipient/
func BenchmarkDedupe(b *testing.B) {
	const n = 1_000_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "user" + strconv.Itoa(i) + "@d" + strconv.Itoa(i%100) + ".example"
	}
	var perAddr float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := newDedupe()
		for i, k := range keys {
			d.add(k, i+2)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perAddr = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(d)
	}
	b.ReportMetric(perAddr, "B/addr")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "addrs/s")
}
