package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"mailout/internal/queue"
	"mailout/internal/store"
)

// importBenchRows is the size of BenchmarkImport's list.
var importBenchRows = 1_000_000

// benchRecipients returns n recipients over 1,000 domains, with two merge
// fields each, like a typical CSV.
func benchRecipients(n int) func() (*store.NewRecipient, error) {
	i := 0
	return func() (*store.NewRecipient, error) {
		if i == n {
			return nil, nil
		}
		i++
		domain := fmt.Sprintf("d%d.example", i%1000)
		email := fmt.Sprintf("user%d@%s", i, domain)
		return &store.NewRecipient{Line: i + 1, Email: email, Domain: domain, Key: email,
			Fields: map[string]string{"first_name": "Ana", "email": email}}, nil
	}
}

func benchDB(b *testing.B) *DB {
	b.Helper()
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func benchImport(b *testing.B, db *DB, name string, n int) *store.Campaign {
	b.Helper()
	c := &store.Campaign{Name: name, Route: "sandbox"}
	if err := db.ImportCampaign(context.Background(), c, benchRecipients(n)); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkImport imports 1,000,000 recipients in one transaction per
// iteration. Run with: go test -run '^$' -bench Import -benchtime 1x ./internal/store/sqlite/
func BenchmarkImport(b *testing.B) {
	n := importBenchRows
	db := benchDB(b)
	ctx := context.Background()
	if err := db.Suppress(ctx, store.Suppression{Key: "user7@d7.example", Reason: "bench"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		benchImport(b, db, fmt.Sprintf("import-%d", i), n)
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkClaim claims 500 rows at a time from a campaign of 1,000,000.
func BenchmarkClaim(b *testing.B) {
	const n, batch = 1_000_000, 500
	db := benchDB(b)
	c := benchImport(b, db, "claim", n)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	b.ResetTimer()
	for range b.N {
		ds, err := db.Claim(ctx, c.ID, "w", now, time.Minute, batch)
		if err != nil {
			b.Fatal(err)
		}
		if len(ds) != batch {
			b.StopTimer() // campaign exhausted: release and go on
			if _, err := db.ReleaseLeases(ctx, c.ID, time.Time{}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRecord records 500 results per call (claimed beforehand, off the
// clock) against a campaign of 1,000,000, with synchronous=FULL (the
// default) and, for comparison, NORMAL.
func BenchmarkRecord(b *testing.B) {
	const n, batch = 1_000_000, 500
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			db := benchDB(b)
			ctx := context.Background()
			if _, err := db.w.ExecContext(ctx, "PRAGMA synchronous = "+sync); err != nil {
				b.Fatal(err)
			}
			c := benchImport(b, db, "record", n)
			now := time.Now().Add(time.Second)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				ds, err := db.Claim(ctx, c.ID, "w", now, time.Minute, batch)
				if err != nil || len(ds) != batch {
					b.Fatalf("Claim = %d rows, %v", len(ds), err)
				}
				rs := make([]store.AttemptResult, len(ds))
				for i, d := range ds {
					rs[i] = store.AttemptResult{DeliveryID: d.ID, Attempt: d.Attempts, State: queue.Delivered,
						Class: "delivered", Code: 250, Text: "2.0.0 Ok: queued", Via: "sandbox", At: now}
				}
				b.StartTimer()
				if got, err := db.Record(ctx, rs); err != nil || got != batch {
					b.Fatalf("Record = %d, %v", got, err)
				}
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkDomains lists the distinct domains (1,000) of a campaign of
// 1,000,000 recipients.
func BenchmarkDomains(b *testing.B) {
	db := benchDB(b)
	c := benchImport(b, db, "domains", 1_000_000)
	b.ResetTimer()
	for range b.N {
		ds, err := db.Domains(context.Background(), c.ID)
		if err != nil || len(ds) != 1000 {
			b.Fatalf("Domains = %d, %v", len(ds), err)
		}
	}
}

// BenchmarkCounts tallies a campaign of 1,000,000 recipients.
func BenchmarkCounts(b *testing.B) {
	db := benchDB(b)
	c := benchImport(b, db, "counts", 1_000_000)
	b.ResetTimer()
	for range b.N {
		if _, err := db.Counts(context.Background(), c.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordBatch records results in batches of the scheduler's sizes
// against a campaign of 200,000 rows (smaller than BenchmarkRecord, so it
// runs in seconds). ns/op is per batch; "us/row" is wall time per result.
// Run with: go test -run '^$' -bench RecordBatch ./internal/store/sqlite/
func BenchmarkRecordBatch(b *testing.B) {
	const n = 200_000
	for _, batch := range []int{64, 256, 1024} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			db := benchDB(b)
			ctx := context.Background()
			c := benchImport(b, db, "record", n)
			now := time.Now().Add(time.Second)
			rows := 0
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				ds, err := db.Claim(ctx, c.ID, "w", now, time.Minute, batch)
				if err != nil {
					b.Fatal(err)
				}
				if len(ds) < batch {
					if _, err := db.ReleaseLeases(ctx, c.ID, time.Time{}); err != nil {
						b.Fatal(err)
					}
					if _, err := db.Requeue(ctx, c.ID, nil, now); err != nil {
						b.Fatal(err)
					}
					if ds, err = db.Claim(ctx, c.ID, "w", now, time.Minute, batch); err != nil || len(ds) != batch {
						b.Fatalf("Claim = %d rows, %v", len(ds), err)
					}
				}
				rs := make([]store.AttemptResult, len(ds))
				for i, d := range ds {
					rs[i] = store.AttemptResult{DeliveryID: d.ID, Attempt: d.Attempts, State: queue.Failed,
						Class: "recipient-unknown", Code: 550, Text: "5.1.1 unknown", Host: "mx.example", Via: "relay:mx.example",
						MessageID: fmt.Sprintf("salt.%d@example.com", d.ID), At: now}
				}
				b.StartTimer()
				if got, err := db.Record(ctx, rs); err != nil || got != batch {
					b.Fatalf("Record = %d, %v", got, err)
				}
				rows += batch
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(rows), "us/row")
		})
	}
}

// BenchmarkClaimBatch claims batches of the scheduler's sizes from a
// campaign of 200,000 rows; "us/row" is wall time per claimed row.
func BenchmarkClaimBatch(b *testing.B) {
	const n = 200_000
	for _, batch := range []int{256, 1024} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			db := benchDB(b)
			ctx := context.Background()
			c := benchImport(b, db, "claim", n)
			now := time.Now().Add(time.Second)
			rows := 0
			b.ResetTimer()
			for range b.N {
				ds, err := db.Claim(ctx, c.ID, "w", now, time.Minute, batch)
				if err != nil {
					b.Fatal(err)
				}
				rows += len(ds)
				if len(ds) != batch {
					b.StopTimer()
					if _, err := db.ReleaseLeases(ctx, c.ID, time.Time{}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(max(rows, 1)), "us/row")
		})
	}
}

// BenchmarkImportCache imports 1,000,000 recipients with the writer's page
// cache at several sizes: the cache is most of the process's memory during
// an import (the target: a million-recipient campaign in 150 MB).
// Run with: go test -run '^$' -bench ImportCache -benchtime 1x ./internal/store/sqlite/
func BenchmarkImportCache(b *testing.B) {
	for _, mib := range []int{8, 16, 64} {
		b.Run(fmt.Sprintf("cache=%dMiB", mib), func(b *testing.B) {
			db := benchDB(b)
			if _, err := db.w.ExecContext(context.Background(), fmt.Sprintf("PRAGMA cache_size = -%d", mib<<10)); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for i := range b.N {
				benchImport(b, db, fmt.Sprintf("import-%d", i), importBenchRows)
			}
			b.ReportMetric(float64(importBenchRows*b.N)/time.Since(start).Seconds(), "rows/s")
		})
	}
}
