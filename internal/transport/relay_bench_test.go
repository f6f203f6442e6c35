package transport

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"mailout/internal/outcome"
	"mailout/internal/smtptest"
)

// BenchmarkRelayDeliver sends through the relay route's session pool to an
// in-process sink: 4 sessions, several messages each, as a campaign does.
//
//	go test -run XXX -bench RelayDeliver -benchtime 5000x ./internal/transport/
func BenchmarkRelayDeliver(b *testing.B) {
	for _, size := range []int{1 << 10, 20 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			s, err := smtptest.New(smtptest.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			a, _, err := ParseRelayURL("smtp+insecure://"+s.Addr, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			r, err := NewRelay(RelayConfig{Accounts: []*RelayAccount{a}, MaxConns: 4, LocalName: "bench.example.com"})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			body := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-\r\n"), size/66)
			data := append([]byte("From: a@example.com\r\nTo: b@example.org\r\nSubject: bench\r\n\r\n"), body...)
			var failed atomic.Int64
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.SetParallelism(2) // 2 × GOMAXPROCS(2) = 4 senders for 4 sessions
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				m := &Message{From: "a@example.com", To: "b@example.org", Domain: "example.org", Data: data}
				for pb.Next() {
					if res := r.Deliver(b.Context(), m); res.Class != outcome.Delivered {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d messages not delivered", failed.Load())
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
