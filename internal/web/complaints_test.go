package web

import (
	"fmt"
	"html"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/route"
	"mailout/internal/store"
)

// deliverAll records every delivery of c as delivered, and returns them.
func (a *app) deliverAll(c *store.Campaign) []store.Delivery {
	a.t.Helper()
	st := a.svc.Store()
	ds, err := st.Claim(a.t.Context(), c.ID, "test", time.Now(), time.Minute, 1000)
	if err != nil {
		a.t.Fatal(err)
	}
	var rs []store.AttemptResult
	for _, d := range ds {
		rs = append(rs, store.AttemptResult{DeliveryID: d.ID, Attempt: d.Attempts, State: queue.Delivered, Class: outcome.Delivered, At: time.Now()})
	}
	if _, err := st.Record(a.t.Context(), rs); err != nil {
		a.t.Fatal(err)
	}
	return ds
}

func recipientsCSV(n int) string {
	var b strings.Builder
	b.WriteString("email,first_name\n")
	for i := range n {
		fmt.Fprintf(&b, "r%d@example.org,R%d\n", i, i)
	}
	return b.String()
}

// The campaign page shows complaints ÷ delivered against the providers'
// 0.3% line, with the later bounces; over the line, a warning and advice.
func TestCampaignPageComplaintRate(t *testing.T) {
	a := newApp(t)
	a.signIn()
	c := a.newCampaign("spring", campaign.RouteConfig{Route: string(route.Sandbox)}, recipientsCSV(1000), false)
	_, page := a.get("/campaigns/" + strconv.FormatInt(c.ID, 10))
	if strings.Contains(page, `id="complaints"`) {
		t.Fatal("a complaint rate before any delivery")
	}
	ds := a.deliverAll(c)
	apply := func(b store.Bounce) {
		t.Helper()
		b.CampaignID = c.ID
		if _, err := a.svc.Store().ApplyBounce(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	apply(store.Bounce{DeliveryID: ds[0].ID, Complaint: true})
	apply(store.Bounce{DeliveryID: ds[1].ID, Class: outcome.RecipientUnknown, Code: 550, Text: "no such user"})
	_, page = a.get("/campaigns/" + strconv.FormatInt(c.ID, 10))
	page = html.UnescapeString(page)
	for _, want := range []string{"0.10% complaints", "under the 0.3% the large mailbox providers tolerate, but over the 0.1%",
		"1 spam reports for 1000 messages delivered; 1 bounced after delivery"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "Stop sending to this list") {
		t.Error("advice under the line")
	}
	for _, d := range ds[2:4] {
		apply(store.Bounce{DeliveryID: d.ID, Complaint: true})
	}
	_, page = a.get("/campaigns/" + strconv.FormatInt(c.ID, 10))
	page = html.UnescapeString(page)
	for _, want := range []string{"0.30% complaints", "at or over the 0.3%", "Stop sending to this list"} {
		if !strings.Contains(page, want) {
			t.Errorf("over the line, the page lacks %q", want)
		}
	}
	_, page = a.do("GET", "/campaigns/"+strconv.FormatInt(c.ID, 10), nil, map[string][]string{"Accept-Language": {"es"}})
	if page = html.UnescapeString(page); !strings.Contains(page, "0,30 % de quejas") || !strings.Contains(page, "Deje de enviar") {
		t.Error("the Spanish page lacks the rate or the advice")
	}
}
