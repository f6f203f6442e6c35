package store

import (
	"context"
	"time"
)

// List is a list of subscribers kept across campaigns.
type List struct {
	ID        int64
	Name      string // unique: CreateList returns ErrExists when it is taken
	CreatedAt time.Time
	// Columns are the merge-field columns in the order first imported,
	// the email column included.
	Columns []string
	// Subscribers is the number of subscribers (filled by List and Lists).
	Subscribers int
}

// Subscriber is one address of a list and its merge fields.
type Subscriber struct {
	ID, ListID int64
	// Email, Domain and Key are as in NewRecipient.
	Email, Domain, Key string
	Fields             map[string]string
	// Source says how the subscriber came in: "import:FILE", "web",
	// "api", "form".
	Source               string
	CreatedAt, UpdatedAt time.Time
}

// SubscriberFilter selects subscribers for listing.
type SubscriberFilter struct {
	// Search is a case-insensitive substring of the email or of any
	// field; "" selects all.
	Search string
	// AfterID pages by key: only rows with ID > AfterID.
	AfterID int64
	// Limit caps the rows returned; 0 = no limit.
	Limit int
}

// Lists persists lists of subscribers.
type Lists interface {
	// CreateList sets l.ID and l.CreatedAt; ErrExists when the name is taken.
	CreateList(ctx context.Context, l *List) error
	// List returns ErrNotFound when there is no such list.
	List(ctx context.Context, id int64) (*List, error)
	// Lists returns every list by name.
	Lists(ctx context.Context) ([]List, error)
	// RenameList returns ErrExists when another list has the name,
	// ErrNotFound when there is no such list.
	RenameList(ctx context.Context, id int64, name string) error
	// DeleteList deletes the list and its subscribers; campaigns made from
	// it keep their recipients.
	DeleteList(ctx context.Context, id int64) error
	// ImportSubscribers adds subscribers in one transaction (all or
	// nothing). next returns the rows one by one and (nil, nil) at the
	// end; an error from next rolls the import back and is returned
	// wrapped. A row whose Key is already in the list updates its Email
	// and Fields and counts as updated. The list's Columns grow by the new
	// names (in NewRecipient.Columns order when it is set). With consent,
	// every subscriber the import adds gets a consent log entry
	// (ConsentSubscribe, Source source) in the same transaction: the
	// evidence of a bulk import; a caller that records its own entry (a
	// confirmed double opt-in, a manual add) passes false. ErrNotFound
	// when there is no such list.
	ImportSubscribers(ctx context.Context, listID int64, source string, consent bool, next func() (*NewRecipient, error)) (added, updated int, err error)
	// Subscribers streams the list's subscribers in ID order; an error
	// from fn stops the walk and is returned as is. ErrNotFound when there
	// is no such list.
	Subscribers(ctx context.Context, listID int64, f SubscriberFilter, fn func(*Subscriber) error) error
	Subscriber(ctx context.Context, listID, id int64) (*Subscriber, error)
	// UpdateSubscriber changes Email, Domain, Key and Fields; ErrExists
	// when another subscriber of the list has the Key, ErrNotFound when
	// the list has no such subscriber. The list's Columns grow by new
	// names, sorted.
	UpdateSubscriber(ctx context.Context, s *Subscriber) error
	DeleteSubscriber(ctx context.Context, listID, id int64) error
}
