// Package store holds mailout's domain types and the Store interface that
// persists them. It has no SQL: the backends live in store/sqlite (embedded
// default) and store/postgres (several workers), and both pass the
// conformance suite in store/storetest.
//
// Place in the flow: recipients are imported into a campaign in one
// transaction (ImportCampaign); the scheduler claims due deliveries in
// batches with a lease (Claim), and records each attempt's outcome in batches
// (Record), fenced by the attempt number so a worker whose lease expired
// cannot overwrite a newer attempt.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/route"
)

// ErrNotFound is returned when a campaign or delivery does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned when a campaign name is already taken.
var ErrExists = errors.New("already exists")

// CampaignStatus is the life cycle of a campaign.
type CampaignStatus string

const (
	CampaignRunning   CampaignStatus = "running"   // created or resumed; work to do
	CampaignPaused    CampaignStatus = "paused"    // stopped by the user, a signal or the circuit breaker
	CampaignDone      CampaignStatus = "done"      // every delivery is final
	CampaignCancelled CampaignStatus = "cancelled" // stopped for good by the user
)

// Attachment is a file sent with every message of a campaign.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// Message is what a campaign sends: a template in RFC 5322 form (headers,
// blank line, text body), an optional HTML body template and attachments.
type Message struct {
	Template     []byte
	TemplateName string // file name, for error messages
	HTML         []byte
	HTMLName     string
	Attachments  []Attachment
}

// Campaign is one send of one message to one list of recipients.
type Campaign struct {
	ID        int64
	Name      string
	CreatedAt time.Time
	Status    CampaignStatus
	// StatusReason says why the campaign is paused or cancelled.
	StatusReason string
	// Route is the way the campaign's messages leave; it is stored here
	// only (RouteConfig holds the rest of the route's settings). Empty in
	// some old databases: see route.Route.OrDefault.
	Route route.Route
	// RouteConfig is the route's settings as JSON, with secrets removed
	// (passwords are never stored; an env var name or file path may be).
	RouteConfig []byte
	// Profile is the speed profile as JSON.
	Profile []byte
	// MaxAge: temporary failures retry until CreatedAt+MaxAge.
	MaxAge time.Duration
	// RetryMin: the first retry delay; later ones grow with jitter.
	RetryMin time.Duration
	// StartAt is when a scheduled campaign starts sending (zero: at once).
	// Claim hands out none of its deliveries before that time.
	StartAt time.Time
	Message Message
	// Diagnosis is the doctor's report (JSON) stored when the circuit
	// breaker paused the campaign.
	Diagnosis []byte
}

// NewRecipient is one recipient as imported.
type NewRecipient struct {
	// Line is the line of the source (CSV) the row started on.
	Line int
	// Email is the address as it is sent in RCPT TO (A-label domain).
	Email string
	// Domain is the A-label domain, lower case.
	Domain string
	// Key is the canonical de-duplication and suppression key.
	Key string
	// Fields are the merge fields, by column name.
	Fields map[string]string
	// Columns, when set, are the names of Fields in the source's order (a
	// CSV header): ImportSubscribers adds a list's new columns in this
	// order. Without it new names are added sorted. ImportCampaign
	// ignores it.
	Columns []string
}

// Delivery is one recipient of one campaign and the state of its delivery.
type Delivery struct {
	ID         int64
	CampaignID int64
	Line       int
	Email      string
	Domain     string
	Key        string
	Fields     map[string]string

	State    queue.State
	Attempts int
	NextAt   time.Time
	// LeaseOwner and LeaseUntil are set while the row is being sent.
	LeaseOwner string
	LeaseUntil time.Time

	// The last attempt's outcome.
	Class    outcome.Class
	Step     outcome.Step
	Code     int
	Enhanced string
	Text     string
	Host     string
	// Via is the route that produced the last outcome ("relay:host", "direct", "sandbox").
	Via string
	// MessageID is the Message-ID header value, fixed at the first attempt so
	// a resend after a crash carries the same one.
	MessageID string
	// PossibleDuplicate is set when an attempt ended without knowing whether
	// the server accepted the message (lost lease, lost reply after ".").
	PossibleDuplicate bool
	// Crashes counts the releases of the row's lease (ReleaseLeases: the
	// process stopped while sending it) since its last recorded attempt.
	Crashes int

	CreatedAt   time.Time
	UpdatedAt   time.Time
	DeliveredAt time.Time
	// BouncedAt is when a bounce for the message was read from the bounce
	// mailbox (zero: none). A message that was delivered (DeliveredAt set)
	// and bounced later is failed with the bounce's class and reply.
	BouncedAt time.Time
	// ComplainedAt is when the recipient reported the message as spam
	// (a feedback-loop report); zero: never.
	ComplainedAt time.Time
}

// AttemptResult is what the scheduler records for one claimed delivery.
type AttemptResult struct {
	DeliveryID int64
	// Attempt is the Attempts value the row had when claimed: the fence.
	// The update applies only while the row is still in state sending with
	// this attempt number.
	Attempt int
	State   queue.State
	NextAt  time.Time // for pending/deferred
	// Refund: the attempt never started (e.g. paused before connecting);
	// the attempt counter is decremented again.
	Refund bool

	Class                     outcome.Class
	Step                      outcome.Step
	Enhanced, Text, Host, Via string
	Code                      int
	MessageID                 string
	PossibleDuplicate         bool
	At                        time.Time
	// Suppress: the result is a hard bounce (the mailbox does not exist).
	// When it applies, the recipient's key goes on the suppression list in
	// the same transaction, with ReasonHardBounce, the campaign and the
	// server's reply (Code, Enhanced, Text).
	Suppress bool
}

// Time is the result's time, or now when it has none.
func (r AttemptResult) Time(now time.Time) time.Time {
	if r.At.IsZero() {
		return now
	}
	return r.At
}

// Check refuses a result that would put a row in a state an attempt
// cannot end in; Record applies none of a batch that has one.
func (r AttemptResult) Check() error {
	switch r.State {
	case queue.Pending, queue.Deferred:
		return nil
	case queue.Delivered, queue.Failed, queue.Suppressed:
		if r.Refund {
			return fmt.Errorf("refund to final state %q", r.State)
		}
		return nil
	}
	return fmt.Errorf("result state %q is not one an attempt ends in", r.State)
}

// HasDuplicateIDs reports whether two results name the same delivery (a
// backend then applies them one at a time, in order).
func HasDuplicateIDs(results []AttemptResult) bool {
	ids := make([]int64, len(results))
	for i, r := range results {
		ids[i] = r.DeliveryID
	}
	slices.Sort(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			return true
		}
	}
	return false
}

// CrashLimit is how many times in a row a delivery's lease may be released
// while it was being sent (the process crashed or was killed, and a later
// run or ReleaseLeases found it still "sending") before it is given up on:
// the release that reaches the limit fails it with class "crash-loop", so
// a recipient that crashes mailout at every start does not keep the rest
// of the list from finishing. Recording an attempt resets the count, and
// Claim returns a row released by a crash alone (see Claim), so the
// recipients that happened to be in flight with it are not counted again.
const CrashLimit = 3

// Suppression reasons and sources set by mailout itself.
const (
	// ReasonHardBounce: a server said the mailbox does not exist.
	ReasonHardBounce = "hard-bounce"
	// SourceBounce: added by Record from a campaign's failed delivery.
	SourceBounce = "bounce"
)

// Suppression is one entry of the suppression list: an address that no
// campaign sends to again.
type Suppression struct {
	// Key is the canonical address key (addr.Address.Key), or "@" and the
	// A-label domain to suppress a whole domain.
	Key string
	// Reason says why: ReasonHardBounce, "unsubscribed", "complaint"…
	Reason string
	// Source says where it came from: SourceBounce, "manual", or the file
	// it was imported from.
	Source string
	// Campaign is the campaign whose delivery bounced (SourceBounce).
	Campaign string
	// Code, Enhanced and Text are the remote server's reply to a bounce.
	Code     int
	Enhanced string
	Text     string
	// At is when it was added; zero means now.
	At time.Time
}

// DomainTally counts a campaign's deliveries of one domain in one state
// and class that went to one mail server (Host; "" before any attempt).
type DomainTally struct {
	Domain string
	State  queue.State
	Class  outcome.Class
	Host   string
	N      int
}

// Counts is a campaign's tally.
type Counts struct {
	Total   int
	ByState map[queue.State]int
	// ByClass counts final failures (state failed) by outcome class.
	ByClass map[outcome.Class]int
	// NextDue is the earliest NextAt among pending and deferred rows
	// (zero when there are none).
	NextDue time.Time
}

// DeliveryFilter selects deliveries for listing.
type DeliveryFilter struct {
	States  []queue.State   // empty: all
	Classes []outcome.Class // empty: all
	// AfterID pages by key: only rows with ID > AfterID (0: from the
	// first), found by the index rather than by reading the rows before.
	AfterID int64
}

// Store persists campaigns and deliveries. Every method is safe for
// concurrent use. Times are stored with at least millisecond precision.
type Store interface {
	Lists
	Accounts
	Bounces
	Consents

	// ImportCampaign creates the campaign and all its recipients in one
	// transaction: after a crash it is either complete or absent. next
	// returns the recipients one by one and (nil, nil) at the end. Recipients
	// whose Key is suppressed are stored in state suppressed. Returns
	// ErrExists if the name is taken. Sets c.ID and c.CreatedAt.
	ImportCampaign(ctx context.Context, c *Campaign, next func() (*NewRecipient, error)) error

	Campaign(ctx context.Context, id int64) (*Campaign, error)
	CampaignByName(ctx context.Context, name string) (*Campaign, error)
	// Campaigns lists every campaign, newest first, without message bodies.
	Campaigns(ctx context.Context) ([]Campaign, error)
	SetCampaignStatus(ctx context.Context, id int64, status CampaignStatus, reason string) error
	SetDiagnosis(ctx context.Context, id int64, diagnosis []byte) error
	// SetRouteConfig replaces the campaign's route settings (JSON, no
	// secret), e.g. to apply the fix its diagnosis suggests.
	SetRouteConfig(ctx context.Context, id int64, routeConfig []byte) error

	// Claim leases up to limit deliveries of the campaign that are pending
	// or deferred with NextAt <= now (none while now is before the
	// campaign's StartAt), in NextAt then ID order (a due row
	// whose address or domain has been suppressed since the import becomes
	// suppressed instead, and is not returned): each becomes
	// sending, Attempts+1, LeaseOwner=owner, LeaseUntil=now+lease. Rows of
	// the returned slice carry the incremented Attempts. A due row with
	// Crashes > 0 (released by a crash) comes before every other and is
	// returned alone. Safe against other
	// claimers (no row is returned twice). A claimed Delivery carries only
	// what a sender needs: ID, CampaignID, Line, Email, Domain, Key, Fields,
	// Attempts, NextAt, MessageID, PossibleDuplicate and Crashes as stored, and
	// State (sending), LeaseOwner, LeaseUntil and UpdatedAt as set by the
	// claim; the last outcome (Class … Via), CreatedAt and DeliveredAt may
	// be left zero (Deliveries returns every field).
	Claim(ctx context.Context, campaignID int64, owner string, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// Record applies the results in one transaction. A result whose fence
	// (state sending, attempts = Attempt) no longer holds is skipped; the
	// number applied is returned.
	Record(ctx context.Context, results []AttemptResult) (int, error)
	// ReleaseLeases returns the campaign's sending rows whose lease ended
	// before now (all of them when now is zero) to pending, due at once,
	// flagged PossibleDuplicate (the message may have been sent), with
	// Crashes incremented; a row whose count reaches CrashLimit is failed
	// with class "crash-loop" instead. Returns how many were released.
	ReleaseLeases(ctx context.Context, campaignID int64, now time.Time) (int, error)
	// Requeue moves failed deliveries (of the given classes, or all) back to
	// pending, due now, for a resend after the cause was fixed. Returns the
	// number requeued. A failed delivery whose address or domain is
	// suppressed becomes suppressed instead.
	Requeue(ctx context.Context, campaignID int64, classes []outcome.Class, now time.Time) (int, error)

	// DueNow makes the campaign's deferred deliveries of the given classes
	// (all when empty) due at now, for a resume after the user fixed a
	// fault on our side. Returns how many rows changed.
	DueNow(ctx context.Context, campaignID int64, classes []outcome.Class, now time.Time) (int, error)

	Counts(ctx context.Context, campaignID int64) (*Counts, error)
	// Deliveries streams the campaign's deliveries in ID order.
	Deliveries(ctx context.Context, campaignID int64, f DeliveryFilter, fn func(*Delivery) error) error
	// Domains lists the distinct recipient domains of a campaign.
	Domains(ctx context.Context, campaignID int64) ([]string, error)
	// DomainTallies counts the campaign's deliveries by domain, state,
	// class and host, sorted by domain, for the per-domain report: the
	// store adds them up instead of handing over every delivery.
	DomainTallies(ctx context.Context, campaignID int64) ([]DomainTally, error)

	// SaveMessage keeps a rendered message (sandbox route), replacing any
	// earlier one for the same delivery.
	SaveMessage(ctx context.Context, campaignID, deliveryID int64, messageID string, data []byte) error
	// Messages streams the kept messages of a campaign in delivery order.
	Messages(ctx context.Context, campaignID int64, fn func(deliveryID int64, email, messageID string, data []byte) error) error

	// Suppress adds an entry to the suppression list; an entry for the
	// same key that is already there is kept as it was. Claim and
	// ImportCampaign store deliveries whose key, or whose domain as
	// "@domain", is on the list as suppressed, and Requeue leaves them
	// suppressed.
	Suppress(ctx context.Context, s Suppression) error
	// Unsuppress takes a key off the list; it reports whether it was there.
	Unsuppress(ctx context.Context, key string) (bool, error)
	// Suppressions streams the list in key order.
	Suppressions(ctx context.Context, fn func(*Suppression) error) error
	// IsSuppressed reports whether the address key, or its domain, is on
	// the list.
	IsSuppressed(ctx context.Context, key string) (bool, error)

	Close() error
}

// Fleet is what a store shared by several sending processes (the
// PostgreSQL store of a fleet of workers) adds for the campaign service's
// shared runs, in which many workers send one campaign at once. The
// service asserts it at run time; the SQLite store, sent by one process
// at a time, does not have it.
type Fleet interface {
	// RenewLeases extends to until the lease of every row of the campaign
	// that owner holds (state sending). Returns how many were renewed.
	RenewLeases(ctx context.Context, campaignID int64, owner string, until time.Time) (int, error)
	// ReleaseOwned returns the campaign's rows owner still holds as
	// ReleaseLeases returns a crashed run's (pending, due at at, flagged
	// PossibleDuplicate, Crashes incremented, crash-loop at CrashLimit).
	ReleaseOwned(ctx context.Context, campaignID int64, owner string, at time.Time) (int, error)
	// PauseRunning pauses the campaign with reason only if it is running,
	// and reports whether it did.
	PauseRunning(ctx context.Context, id int64, reason string) (bool, error)
}
