package store

import (
	"context"
	"time"

	"mailout/internal/outcome"
)

// Suppression reasons and sources set from the bounce mailbox.
const (
	// ReasonComplaint: the recipient reported a message as spam (ARF).
	ReasonComplaint = "complaint"
	// SourceFeedbackLoop: added from a feedback-loop report.
	SourceFeedbackLoop = "feedback-loop"
)

// Bounce is a report from the bounce mailbox applied to one delivery.
type Bounce struct {
	CampaignID, DeliveryID int64
	// Attempt, when not 0, is the attempt the report is about (from the
	// VERP token): a report about an older attempt of a row that was sent
	// again is still applied, the row's attempt number is not a fence
	// here, but it is kept for the record.
	Attempt int
	// Complaint: a feedback-loop report; the row's ComplainedAt is set and
	// nothing else changes on it.
	Complaint bool
	// Failed: a final failure of delivery (a delay is not applied at
	// all). The row becomes failed with Class … Text, and BouncedAt.
	Class    outcome.Class
	Code     int
	Enhanced string
	Text     string
	// Suppress: the recipient's key goes on the suppression list with
	// ReasonHardBounce (SourceBounce) or, for a complaint,
	// ReasonComplaint (SourceFeedbackLoop), and the campaign's name.
	Suppress bool
	At       time.Time
}

// Review is a message of the bounce mailbox kept for a person to read:
// it is no bounce or complaint mailout understands, or it names no
// delivery of this database.
type Review struct {
	ID      int64
	Mailbox string // the mailbox URL without password
	UID     string // the message's UID (IMAP UIDVALIDITY/UID, POP3 UIDL)
	Reason  string
	Subject string
	Sender  string
	Data    []byte
	At      time.Time
}

// Feedback is what became of a campaign's accepted messages afterwards,
// by the bounce mailbox: the base of its complaint rate.
type Feedback struct {
	// Delivered counts the messages a server accepted (DeliveredAt set),
	// those that bounced later included.
	Delivered int
	// Complaints counts those reported as spam (ComplainedAt set).
	Complaints int
	// LaterBounces counts those that bounced after they were accepted.
	LaterBounces int
}

// Bounces keeps what the bounce mailbox says.
type Bounces interface {
	// DeliveryByMessageID finds the delivery whose message had this
	// Message-ID (without angle brackets): ErrNotFound when none.
	DeliveryByMessageID(ctx context.Context, messageID string) (*Delivery, error)
	// ApplyBounce applies b in one transaction and reports whether it
	// changed anything: false when the delivery does not exist in that
	// campaign, or the same kind of report was already applied to it.
	ApplyBounce(ctx context.Context, b Bounce) (bool, error)
	// KeepForReview keeps r; a message already kept (same mailbox and
	// UID) is kept once. Reports whether r was new.
	KeepForReview(ctx context.Context, r Review) (bool, error)
	// Reviews streams the kept messages, oldest first (Data included).
	Reviews(ctx context.Context, fn func(*Review) error) error
	// MailboxSeen reports whether the mailbox's message uid was processed.
	MailboxSeen(ctx context.Context, mailbox, uid string) (bool, error)
	// MarkMailboxSeen remembers that it was.
	MarkMailboxSeen(ctx context.Context, mailbox, uid string, at time.Time) error
	// Feedback counts the campaign's accepted messages and what the
	// bounce mailbox said about them, from one snapshot.
	Feedback(ctx context.Context, campaignID int64) (Feedback, error)
}
