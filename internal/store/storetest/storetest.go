// Package storetest is the conformance suite every store.Store backend
// passes (store/sqlite now, store/postgres later). It checks the contract
// written in the doc comments of package store: atomic imports, claim order
// and exclusivity, the attempt fence, lease release, requeue, counts that
// always sum to the total, byte-exact message storage, and the lists of
// subscribers (import by key, all or nothing; search and paging).
//
// A backend's test calls Run with a function that opens a fresh, empty
// store for one subtest.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"mailout/internal/store"
)

// Run runs every conformance subtest; open returns a new empty store and
// registers its cleanup with t.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"import round trip", testImportRoundTrip},
		{"import is atomic", testImportAtomic},
		{"duplicate name", testDuplicateName},
		{"suppressed at import", testSuppressedAtImport},
		{"suppression list", testSuppressionList},
		{"hard bounce suppressed", testHardBounceSuppressed},
		{"suppressed at claim", testSuppressedAtClaim},
		{"claim order and limit", testClaimOrder},
		{"concurrent claims", testConcurrentClaims},
		{"fence", testFence},
		{"release leases", testReleaseLeases},
		{"crash loop", testCrashLoop},
		{"requeue", testRequeue},
		{"due now", testDueNow},
		{"counts sum to total", testCountsInvariant},
		{"deliveries filter", testDeliveriesFilter},
		{"messages", testMessages},
		{"campaigns and status", testCampaignsStatus},
		{"scheduled", testScheduled},
		{"diagnosis", testDiagnosis},
		{"set route config", testSetRouteConfig},
		{"refund", testRefund},
		{"delivered", testDelivered},
		{"domains", testDomains},
		{"domain tallies", testDomainTallies},
		{"unknown campaign", testUnknownCampaign},
		{"typed outcome", testTypedOutcome},
		{"lists create", testListsCreate},
		{"lists import updates", testListsImportUpdates},
		{"lists import is atomic", testListsImportAtomic},
		{"lists search and paging", testListsSearchAndPaging},
		{"lists update and delete subscriber", testListsUpdateDelete},
		{"lists delete", testListsDelete},
		{"users", testUsers},
		{"sessions", testSessions},
		{"api tokens", testTokens},
		{"settings", testSettings},
		{"bounce after delivery", testBounceAfterDelivery},
		{"bounce reviews and seen", testBounceReviewsAndSeen},
		{"consent pending", testConsentPending},
		{"consent log", testConsentLog},
		{"consent from import", testConsentFromImport},
		{"feedback", testFeedback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// msNow is the current time at the store's guaranteed precision.
func msNow() time.Time { return time.UnixMilli(time.Now().UnixMilli()) }

func recipient(i int) *store.NewRecipient {
	domain := fmt.Sprintf("d%d.example", i%3)
	email := fmt.Sprintf("r%d@%s", i, domain)
	return &store.NewRecipient{
		Line:   i + 2, // after a CSV header
		Email:  email,
		Domain: domain,
		Key:    email,
		Fields: map[string]string{"name": fmt.Sprintf("Recipient %d", i), "email": email},
	}
}

// recipients returns a next function over n generated recipients.
func recipients(n int) func() (*store.NewRecipient, error) {
	i := 0
	return func() (*store.NewRecipient, error) {
		if i == n {
			return nil, nil
		}
		i++
		return recipient(i - 1), nil
	}
}

func importN(t *testing.T, s store.Store, name string, n int) *store.Campaign {
	t.Helper()
	c := &store.Campaign{Name: name, Status: store.CampaignRunning, Route: "sandbox"}
	if err := s.ImportCampaign(context.Background(), c, recipients(n)); err != nil {
		t.Fatalf("ImportCampaign(%q, %d recipients): %v", name, n, err)
	}
	return c
}

func all(t *testing.T, s store.Store, campaign int64, f store.DeliveryFilter) []store.Delivery {
	t.Helper()
	var out []store.Delivery
	if err := s.Deliveries(context.Background(), campaign, f, func(d *store.Delivery) error {
		out = append(out, *d)
		return nil
	}); err != nil {
		t.Fatalf("Deliveries: %v", err)
	}
	return out
}

func byID(t *testing.T, s store.Store, campaign, id int64) store.Delivery {
	t.Helper()
	for _, d := range all(t, s, campaign, store.DeliveryFilter{}) {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("delivery %d not found in campaign %d", id, campaign)
	return store.Delivery{}
}

func claim(t *testing.T, s store.Store, campaign int64, now time.Time, limit int) []store.Delivery {
	t.Helper()
	ds, err := s.Claim(context.Background(), campaign, "w1", now, time.Minute, limit)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return ds
}

func record(t *testing.T, s store.Store, want int, rs ...store.AttemptResult) {
	t.Helper()
	n, err := s.Record(context.Background(), rs)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if n != want {
		t.Fatalf("Record applied %d of %d results, want %d", n, len(rs), want)
	}
}

func counts(t *testing.T, s store.Store, campaign int64) *store.Counts {
	t.Helper()
	c, err := s.Counts(context.Background(), campaign)
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	return c
}

func ids(ds []store.Delivery) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}
