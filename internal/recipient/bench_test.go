package recipient

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// BenchmarkRead imports 1,000,000 rows (email + 3 fields) from memory and
// reports rows/s. Run: go test -run XXX -bench Read -benchtime 3x ./internal/recipient/
func BenchmarkRead(b *testing.B) {
	const rows = 1_000_000
	var buf bytes.Buffer
	buf.WriteString("email,first_name,last_name,City\n")
	domains := []string{"example.com", "example.org", "example.net", "bücher.example", "mail.example.co.uk"}
	for i := range rows {
		fmt.Fprintf(&buf, "user%d.name@%s,First%d,Last%d,\"City %d\"\n", i, domains[i%len(domains)], i, i, i%1000)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st, err := Read(context.Background(), bytes.NewReader(data), Options{},
			func(Recipient) error { return nil },
			func(e RowError) { b.Fatalf("row error: %v", e) })
		if err != nil || st.Imported != rows {
			b.Fatalf("Read = %+v, %v", st, err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
