package campaign

import (
	"errors"
	"fmt"
	"time"
)

// ErrStartInPast is returned by ParseStartAt for a time that has passed.
var ErrStartInPast = errors.New("the start time has passed")

// startLayouts are the local-time forms ParseStartAt takes besides RFC
// 3339: what people type, and what an HTML datetime-local input sends.
var startLayouts = []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05"}

// ParseStartAt reads a campaign's start time: RFC 3339 (with its zone), or
// a date and time without zone taken in the local zone. A time not after
// now is ErrStartInPast.
func ParseStartAt(s string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	for _, layout := range startLayouts {
		if err == nil {
			break
		}
		t, err = time.ParseInLocation(layout, s, time.Local)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time: give RFC 3339 (2026-12-24T09:00:00+01:00) or a local date and time (2026-12-24 09:00)", s)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("%w: %s", ErrStartInPast, t.Local().Format(time.DateTime))
	}
	return t, nil
}
