package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
)

func testClaimOrder(t *testing.T, s store.Store) {
	c := importN(t, s, "order", 10)
	now := msNow().Add(time.Second)
	first := claim(t, s, c.ID, now, 3)
	if want := ids(all(t, s, c.ID, store.DeliveryFilter{})[:3]); !slices.Equal(ids(first), want) {
		t.Fatalf("first claim = %v, want the lowest ids %v", ids(first), want)
	}
	for _, d := range first {
		if d.State != queue.Sending || d.Attempts != 1 || d.LeaseOwner != "w1" || !d.LeaseUntil.Equal(now.Add(time.Minute)) {
			t.Errorf("claimed row %d: state %s attempts %d owner %q lease %v", d.ID, d.State, d.Attempts, d.LeaseOwner, d.LeaseUntil)
		}
		if stored := byID(t, s, c.ID, d.ID); stored.State != queue.Sending || stored.Attempts != 1 {
			t.Errorf("stored row %d: state %s attempts %d, want sending 1", d.ID, stored.State, stored.Attempts)
		}
	}
	// Claim the rest and defer every row: the highest ids earliest, so that
	// a claim taking rows in id order instead of next_at order is caught.
	// One row is deferred into the future.
	rest := claim(t, s, c.ID, now, 100)
	if len(rest) != 7 {
		t.Fatalf("claim of the rest got %d rows, want 7", len(rest))
	}
	rows := append(first, rest...)
	at := func(i int) time.Time {
		switch i {
		case 9:
			return now.Add(time.Hour)
		case 8:
			return now.Add(-3 * time.Hour)
		case 7:
			return now.Add(-2 * time.Hour)
		}
		return now.Add(-time.Minute)
	}
	for i, d := range rows {
		record(t, s, 1, store.AttemptResult{DeliveryID: d.ID, Attempt: 1, State: queue.Deferred, NextAt: at(i), Class: "greylisted", At: now})
	}
	second := claim(t, s, c.ID, now, 4)
	if want := []int64{rows[8].ID, rows[7].ID, rows[0].ID, rows[1].ID}; !slices.Equal(ids(second), want) {
		t.Fatalf("second claim = %v, want %v (by next_at, then id)", ids(second), want)
	}
	if second[0].Attempts != 2 {
		t.Errorf("re-claimed row has Attempts %d, want 2", second[0].Attempts)
	}
	if got := claim(t, s, c.ID, now, 100); len(got) != 5 {
		t.Fatalf("claim of the due rest got %d rows, want 5 (the one deferred an hour is not due)", len(got))
	}
	if got := claim(t, s, c.ID, now.Add(2*time.Hour), 100); len(got) != 1 || got[0].ID != rows[9].ID {
		t.Fatalf("claim two hours later = %v, want [%d]", ids(got), rows[9].ID)
	}
	if got := claim(t, s, c.ID, now.Add(2*time.Hour), 100); len(got) != 0 {
		t.Fatalf("nothing due: claim = %v", ids(got))
	}
}

func testConcurrentClaims(t *testing.T, s store.Store) {
	const n, workers = 600, 6
	c := importN(t, s, "race", n)
	now := msNow().Add(time.Second)
	var (
		mu   sync.Mutex
		seen = map[int64]string{}
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for w := range workers {
		owner := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for {
				ds, err := s.Claim(context.Background(), c.ID, owner, now, time.Minute, 7)
				if err != nil {
					errs <- err
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					if prev, dup := seen[d.ID]; dup {
						errs <- fmt.Errorf("row %d claimed by %s and %s", d.ID, prev, owner)
					}
					seen[d.ID] = owner
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != n {
		t.Fatalf("claimed %d distinct rows, want %d", len(seen), n)
	}
	if got := counts(t, s, c.ID).ByState[queue.Sending]; got != n {
		t.Fatalf("%d rows sending, want %d", got, n)
	}
}

func testFence(t *testing.T, s store.Store) {
	c := importN(t, s, "fence", 3)
	now := msNow().Add(time.Second)
	ds := claim(t, s, c.ID, now, 3)
	delivered := func(id int64, attempt int) store.AttemptResult {
		return store.AttemptResult{DeliveryID: id, Attempt: attempt, State: queue.Delivered, Class: "delivered", Code: 250, At: now}
	}
	record(t, s, 0, delivered(ds[0].ID, 0))                                                 // stale attempt
	record(t, s, 2, delivered(ds[0].ID, 1), delivered(ds[1].ID, 7), delivered(ds[2].ID, 1)) // one stale in a batch
	record(t, s, 0, delivered(ds[0].ID, 1))                                                 // already recorded
	if d := byID(t, s, c.ID, ds[1].ID); d.State != queue.Sending || d.Attempts != 1 {
		t.Fatalf("row of the stale result: state %s attempts %d, want untouched sending 1", d.State, d.Attempts)
	}
	// A worker that lost its lease: the row is released and claimed again;
	// the late result of attempt 1 must not overwrite attempt 2.
	if n, err := s.ReleaseLeases(context.Background(), c.ID, now.Add(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("ReleaseLeases = %d, %v; want 1", n, err)
	}
	again := claim(t, s, c.ID, now.Add(2*time.Minute), 1)
	if len(again) != 1 || again[0].Attempts != 2 {
		t.Fatalf("re-claim = %+v, want the row at attempt 2", again)
	}
	record(t, s, 0, delivered(ds[1].ID, 1))
	if d := byID(t, s, c.ID, ds[1].ID); d.State != queue.Sending || d.LeaseOwner != "w1" {
		t.Fatalf("late result overwrote attempt 2: state %s", d.State)
	}
	record(t, s, 1, delivered(ds[1].ID, 2))
}

func testReleaseLeases(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := importN(t, s, "leases", 5)
	now := msNow().Add(time.Second)
	ds := claim(t, s, c.ID, now, 3) // leases end at now+1m
	for _, tc := range []struct {
		at   time.Time
		want int
	}{
		{now, 0},
		{now.Add(time.Minute), 0}, // ended before now: strictly
		{now.Add(time.Minute + time.Millisecond), 3},
		{now.Add(time.Hour), 0}, // nothing left to release
	} {
		if n, err := s.ReleaseLeases(ctx, c.ID, tc.at); err != nil || n != tc.want {
			t.Fatalf("ReleaseLeases(%v) = %d, %v; want %d", tc.at.Sub(now), n, err, tc.want)
		}
	}
	for _, d := range ds {
		got := byID(t, s, c.ID, d.ID)
		if got.State != queue.Pending || !got.PossibleDuplicate || got.Attempts != 1 || got.LeaseOwner != "" || !got.LeaseUntil.IsZero() {
			t.Errorf("released row %d: state %s dup %v attempts %d owner %q until %v", d.ID, got.State, got.PossibleDuplicate, got.Attempts, got.LeaseOwner, got.LeaseUntil)
		}
		if got.NextAt.After(now.Add(time.Minute + time.Millisecond)) {
			t.Errorf("released row %d due at %v, want at once", d.ID, got.NextAt)
		}
	}
	for _, d := range all(t, s, c.ID, store.DeliveryFilter{}) {
		if !slices.Contains(ids(ds), d.ID) && d.PossibleDuplicate {
			t.Errorf("row %d was never claimed but is flagged a possible duplicate", d.ID)
		}
	}
	// Zero time releases every lease, expired or not. Released rows are
	// claimed one at a time (a crash counted against each).
	if got := claimAll(t, s, c.ID, now.Add(2*time.Minute)); len(got) != 5 {
		t.Fatalf("claimed %d rows, want all 5", len(got))
	}
	if n, err := s.ReleaseLeases(ctx, c.ID, time.Time{}); err != nil || n != 5 {
		t.Fatalf("ReleaseLeases(zero) = %d, %v; want 5", n, err)
	}
	if got := claimAll(t, s, c.ID, msNow().Add(time.Second)); len(got) != 5 {
		t.Fatalf("after releasing all, %d rows claimable, want 5", len(got))
	}
}

// claimAll claims until nothing is due and returns every claimed row.
func claimAll(t *testing.T, s store.Store, campaign int64, now time.Time) []store.Delivery {
	t.Helper()
	var out []store.Delivery
	for {
		ds := claim(t, s, campaign, now, 100)
		if len(ds) == 0 {
			return out
		}
		out = append(out, ds...)
	}
}

func testRequeue(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.Suppress(ctx, store.Suppression{Key: recipient(5).Key, Reason: "unsubscribed"}); err != nil {
		t.Fatal(err)
	}
	c := importN(t, s, "requeue", 6) // recipient 5 suppressed at import
	now := msNow().Add(time.Second)
	ds := claim(t, s, c.ID, now, 5)
	res := func(i int, st queue.State, class outcome.Class) store.AttemptResult {
		return store.AttemptResult{DeliveryID: ds[i].ID, Attempt: 1, State: st, Class: class, At: now}
	}
	record(t, s, 5,
		res(0, queue.Failed, "auth-failed"),
		res(1, queue.Failed, "auth-failed"),
		res(2, queue.Failed, "relay-denied"),
		res(3, queue.Failed, "recipient-unknown"),
		res(4, queue.Delivered, "delivered"))
	// The hard bounce suppresses its key: a requeue must not resend to it.
	if err := s.Suppress(ctx, store.Suppression{Key: ds[3].Key, Reason: "hard bounce"}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	for _, tc := range []struct {
		classes []outcome.Class
		want    int
	}{
		{[]outcome.Class{"relay-denied"}, 1},
		{[]outcome.Class{"relay-denied", "no-such-class"}, 0},
		{nil, 2}, // both auth-failed; recipient-unknown is suppressed now
	} {
		if n, err := s.Requeue(ctx, c.ID, tc.classes, later); err != nil || n != tc.want {
			t.Fatalf("Requeue(%v) = %d, %v; want %d", tc.classes, n, err, tc.want)
		}
	}
	// The suppressed hard bounce is not requeued: it becomes suppressed.
	want := map[int64]queue.State{ds[0].ID: queue.Pending, ds[1].ID: queue.Pending, ds[2].ID: queue.Pending, ds[3].ID: queue.Suppressed, ds[4].ID: queue.Delivered}
	for _, d := range all(t, s, c.ID, store.DeliveryFilter{}) {
		w, ok := want[d.ID]
		if !ok {
			w = queue.Suppressed
		}
		if d.State != w {
			t.Errorf("row %d (%s, %s): state %s, want %s", d.ID, d.Email, d.Class, d.State, w)
		}
		if w == queue.Pending && !d.NextAt.Equal(later) {
			t.Errorf("requeued row %d due %v, want %v", d.ID, d.NextAt, later)
		}
	}
	if got := len(claim(t, s, c.ID, later, 10)); got != 3 {
		t.Fatalf("after requeue %d rows claimable, want 3", got)
	}
}

func testCountsInvariant(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 40
	c := importN(t, s, "counts", n)
	now := msNow().Add(time.Second)
	check := func(phase string, want map[queue.State]int) {
		t.Helper()
		got := counts(t, s, c.ID)
		sum := 0
		for _, v := range got.ByState {
			sum += v
		}
		if got.Total != n || sum != n {
			t.Fatalf("%s: Total %d, states sum to %d, want %d", phase, got.Total, sum, n)
		}
		for st, w := range want {
			if got.ByState[st] != w {
				t.Errorf("%s: %s = %d, want %d (%v)", phase, st, got.ByState[st], w, got.ByState)
			}
		}
		classes := 0
		for _, v := range got.ByClass {
			classes += v
		}
		if classes != got.ByState[queue.Failed] {
			t.Errorf("%s: ByClass sums to %d, failed is %d", phase, classes, got.ByState[queue.Failed])
		}
	}
	check("imported", map[queue.State]int{queue.Pending: n})
	if d := counts(t, s, c.ID).NextDue; d.IsZero() || d.After(now) {
		t.Errorf("NextDue after import = %v, want due now", d)
	}
	ds := claim(t, s, c.ID, now, 30)
	check("claimed", map[queue.State]int{queue.Pending: 10, queue.Sending: 30})
	var rs []store.AttemptResult
	for i, d := range ds[:20] {
		r := store.AttemptResult{DeliveryID: d.ID, Attempt: 1, At: now}
		switch i % 4 {
		case 0:
			r.State, r.Class = queue.Delivered, "delivered"
		case 1:
			r.State, r.Class, r.NextAt = queue.Deferred, "greylisted", now.Add(time.Duration(i)*time.Minute)
		case 2:
			r.State, r.Class = queue.Failed, "recipient-unknown"
		case 3:
			r.State, r.Class = queue.Failed, "content-rejected"
		}
		rs = append(rs, r)
	}
	record(t, s, 20, rs...)
	check("recorded", map[queue.State]int{queue.Pending: 10, queue.Sending: 10, queue.Delivered: 5, queue.Deferred: 5, queue.Failed: 10})
	got := counts(t, s, c.ID)
	if got.ByClass["recipient-unknown"] != 5 || got.ByClass["content-rejected"] != 5 || len(got.ByClass) != 2 {
		t.Errorf("ByClass = %v, want 5 recipient-unknown and 5 content-rejected", got.ByClass)
	}
	claim(t, s, c.ID, now, 10) // the pending ones; deferred are in the future
	check("all claimed", map[queue.State]int{queue.Sending: 20, queue.Deferred: 5})
	if d := counts(t, s, c.ID).NextDue; !d.Equal(now.Add(time.Minute)) {
		t.Errorf("NextDue = %v, want the earliest deferral %v", d, now.Add(time.Minute))
	}
	if _, err := s.ReleaseLeases(ctx, c.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	check("released", map[queue.State]int{queue.Pending: 20, queue.Deferred: 5})
	if _, err := s.Requeue(ctx, c.ID, nil, now); err != nil {
		t.Fatal(err)
	}
	check("requeued", map[queue.State]int{queue.Pending: 30, queue.Failed: 0, queue.Delivered: 5})
	for _, d := range claimAll(t, s, c.ID, now.Add(time.Hour)) {
		record(t, s, 1, store.AttemptResult{DeliveryID: d.ID, Attempt: d.Attempts, State: queue.Delivered, At: now})
	}
	check("done", map[queue.State]int{queue.Delivered: n})
	if d := counts(t, s, c.ID).NextDue; !d.IsZero() {
		t.Errorf("NextDue with nothing waiting = %v, want zero", d)
	}
}

func testDeliveriesFilter(t *testing.T, s store.Store) {
	c := importN(t, s, "filter", 8)
	now := msNow().Add(time.Second)
	ds := claim(t, s, c.ID, now, 6)
	classes := []outcome.Class{"delivered", "recipient-unknown", "mailbox-full", "recipient-unknown", "greylisted", ""}
	states := []queue.State{queue.Delivered, queue.Failed, queue.Failed, queue.Failed, queue.Deferred, queue.Pending}
	for i, d := range ds {
		r := store.AttemptResult{DeliveryID: d.ID, Attempt: 1, State: states[i], Class: classes[i], At: now}
		if i == 5 {
			r.Refund = true
		}
		record(t, s, 1, r)
	}
	for _, tc := range []struct {
		name string
		f    store.DeliveryFilter
		want []int64
	}{
		{"all", store.DeliveryFilter{}, ids(all(t, s, c.ID, store.DeliveryFilter{}))},
		{"failed", store.DeliveryFilter{States: []queue.State{queue.Failed}}, []int64{ds[1].ID, ds[2].ID, ds[3].ID}},
		{"two states", store.DeliveryFilter{States: []queue.State{queue.Delivered, queue.Deferred}}, []int64{ds[0].ID, ds[4].ID}},
		{"class", store.DeliveryFilter{Classes: []outcome.Class{"recipient-unknown"}}, []int64{ds[1].ID, ds[3].ID}},
		{"state and class", store.DeliveryFilter{States: []queue.State{queue.Failed}, Classes: []outcome.Class{"mailbox-full", "greylisted"}}, []int64{ds[2].ID}},
		{"none", store.DeliveryFilter{States: []queue.State{queue.Suppressed}}, nil},
		// Keyset paging: only rows after an id, with the other filters.
		{"after", store.DeliveryFilter{AfterID: ds[3].ID}, ids(all(t, s, c.ID, store.DeliveryFilter{}))[4:]},
		{"after and state", store.DeliveryFilter{AfterID: ds[1].ID, States: []queue.State{queue.Failed}}, []int64{ds[2].ID, ds[3].ID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(all(t, s, c.ID, tc.f)); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if n := len(all(t, s, c.ID, store.DeliveryFilter{})); n != 8 {
		t.Fatalf("unfiltered list has %d rows, want 8", n)
	}
	stop := errors.New("enough")
	calls := 0
	err := s.Deliveries(context.Background(), c.ID, store.DeliveryFilter{}, func(*store.Delivery) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("callback error: err = %v after %d calls, want %v after 1", err, calls, stop)
	}
}

func testRefund(t *testing.T, s store.Store) {
	c := importN(t, s, "refund", 1)
	now := msNow().Add(time.Second)
	d := claim(t, s, c.ID, now, 1)[0]
	record(t, s, 1, store.AttemptResult{DeliveryID: d.ID, Attempt: 1, State: queue.Deferred, NextAt: now, Class: "greylisted", Code: 451, At: now})
	d = claim(t, s, c.ID, now, 1)[0]
	if d.Attempts != 2 {
		t.Fatalf("second claim Attempts = %d, want 2", d.Attempts)
	}
	// Paused before connecting: the attempt never happened.
	record(t, s, 1, store.AttemptResult{DeliveryID: d.ID, Attempt: 2, State: queue.Pending, NextAt: now, Refund: true, At: now})
	got := byID(t, s, c.ID, d.ID)
	if got.State != queue.Pending || got.Attempts != 1 || got.LeaseOwner != "" || got.Class != "greylisted" || got.Code != 451 {
		t.Fatalf("after refund: state %s attempts %d owner %q class %q code %d; want pending, 1, no lease, last outcome kept", got.State, got.Attempts, got.LeaseOwner, got.Class, got.Code)
	}
	if again := claim(t, s, c.ID, now, 1); len(again) != 1 || again[0].Attempts != 2 {
		t.Fatalf("claim after refund = %+v, want attempt 2", again)
	}
	if _, err := s.Record(context.Background(), []store.AttemptResult{{DeliveryID: d.ID, Attempt: 2, State: queue.Delivered, Refund: true}}); err == nil {
		t.Error("Record accepted a refund into a final state")
	}
}

func testDelivered(t *testing.T, s store.Store) {
	c := importN(t, s, "delivered", 1)
	now := msNow().Add(time.Second)
	d := claim(t, s, c.ID, now, 1)[0]
	record(t, s, 1, store.AttemptResult{DeliveryID: d.ID, Attempt: 1, State: queue.Deferred, NextAt: now, Class: "protocol-error",
		MessageID: "<first@mailout.test>", PossibleDuplicate: true, At: now})
	d = claim(t, s, c.ID, now, 1)[0]
	if d.MessageID != "<first@mailout.test>" || !d.PossibleDuplicate {
		t.Fatalf("claimed row: MessageID %q dup %v, want the first attempt's and true", d.MessageID, d.PossibleDuplicate)
	}
	at := now.Add(time.Second)
	record(t, s, 1, store.AttemptResult{DeliveryID: d.ID, Attempt: 2, State: queue.Delivered, Class: "delivered", Step: "data",
		Code: 250, Enhanced: "2.0.0", Text: "Ok: queued as 4AbC", Host: "mx.example", Via: "direct",
		MessageID: "<second@mailout.test>", At: at})
	got := byID(t, s, c.ID, d.ID)
	want := store.Delivery{State: queue.Delivered, Attempts: 2, Class: "delivered", Step: "data", Code: 250, Enhanced: "2.0.0",
		Text: "Ok: queued as 4AbC", Host: "mx.example", Via: "direct", MessageID: "<first@mailout.test>", PossibleDuplicate: true}
	if got.State != want.State || got.Attempts != want.Attempts || got.Class != want.Class || got.Step != want.Step ||
		got.Code != want.Code || got.Enhanced != want.Enhanced || got.Text != want.Text || got.Host != want.Host ||
		got.Via != want.Via || got.MessageID != want.MessageID || got.PossibleDuplicate != want.PossibleDuplicate {
		t.Fatalf("delivered row = %+v, want %+v", got, want)
	}
	if !got.DeliveredAt.Equal(at) || !got.UpdatedAt.Equal(at) || got.LeaseOwner != "" {
		t.Fatalf("DeliveredAt %v UpdatedAt %v owner %q, want %v and no lease", got.DeliveredAt, got.UpdatedAt, got.LeaseOwner, at)
	}
}

func testDueNow(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := importN(t, s, "duenow", 4)
	now := msNow().Add(time.Second)
	ds := claim(t, s, c.ID, now, 4)
	later := now.Add(time.Hour)
	res := func(i int, class outcome.Class) store.AttemptResult {
		return store.AttemptResult{DeliveryID: ds[i].ID, Attempt: 1, State: queue.Deferred, NextAt: later, Class: class, At: now}
	}
	record(t, s, 4, res(0, "connect-timeout"), res(1, "connect-timeout"), res(2, "greylisted"),
		store.AttemptResult{DeliveryID: ds[3].ID, Attempt: 1, State: queue.Delivered, Class: "delivered", At: now})
	if got := len(claim(t, s, c.ID, now, 10)); got != 0 {
		t.Fatalf("%d rows claimable before they are due", got)
	}
	if n, err := s.DueNow(ctx, c.ID, []outcome.Class{"connect-timeout"}, now); err != nil || n != 2 {
		t.Fatalf("DueNow(connect-timeout) = %d, %v; want 2", n, err)
	}
	got := claim(t, s, c.ID, now, 10)
	if len(got) != 2 {
		t.Fatalf("%d rows claimable after DueNow, want the 2 connect-timeout ones", len(got))
	}
	for _, d := range got {
		if d.ID != ds[0].ID && d.ID != ds[1].ID {
			t.Errorf("row %d (%s) claimed; only the connect-timeout rows were made due", d.ID, d.Class)
		}
	}
	if n, err := s.DueNow(ctx, c.ID, nil, now); err != nil || n != 1 {
		t.Fatalf("DueNow(all) = %d, %v; want 1 (the greylisted row)", n, err)
	}
	if _, err := s.DueNow(ctx, 999999, nil, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DueNow on an unknown campaign: %v, want ErrNotFound", err)
	}
}
