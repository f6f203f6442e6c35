package web

import (
	"fmt"
	"strings"

	"mailout/internal/store"
)

// The complaint rate of a campaign: complaints (feedback-loop reports)
// per message delivered, against the line the large mailbox providers
// draw for bulk senders. Gmail's and Yahoo's sender rules (2024) ask for a
// spam-complaint rate below 0.3%, and advise staying below 0.1%.
const (
	// complaintLimit is the providers' line, in percent.
	complaintLimit = 0.3
	// complaintAdvised is the rate they advise staying under.
	complaintAdvised = 0.1
)

// complaintView is the campaign page's complaint rate.
type complaintView struct {
	store.Feedback
	// Rate is complaints ÷ delivered as text ("0.12%", "0,12 %").
	Rate string
	// Level: "ok" (under the advised rate), "near" (between it and the
	// line) or "over" (at the line or over it).
	Level string
}

// newComplaintView is nil before any message was delivered.
func newComplaintView(f store.Feedback, lang string) *complaintView {
	if f.Delivered == 0 {
		return nil
	}
	pct := float64(f.Complaints) * 100 / float64(f.Delivered)
	v := &complaintView{Feedback: f, Rate: percentText(pct, lang), Level: "ok"}
	switch {
	case pct >= complaintLimit:
		v.Level = "over"
	case pct >= complaintAdvised:
		v.Level = "near"
	}
	return v
}

// percentText writes a rate with two decimals in the language's way.
func percentText(pct float64, lang string) string {
	s := fmt.Sprintf("%.2f", pct)
	if lang == "es" {
		return strings.Replace(s, ".", ",", 1) + " %"
	}
	return s + "%"
}
