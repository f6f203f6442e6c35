package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"mailout/internal/scheduler"
)

// When results could not be recorded the error names the store failure,
// says that nothing more was sent and how to go on.
func TestStoreFailureMessage(t *testing.T) {
	disk := errors.New("database or disk is full")
	err := storeFailure(fmt.Errorf("wrapped: %w", &scheduler.RecordError{Err: disk, Unrecorded: 3}), "/var/mail.db", "spring sale")
	if !errors.Is(err, disk) || !errors.Is(err, scheduler.ErrStoreFailed) {
		t.Fatalf("%v does not wrap the store's error", err)
	}
	msg := err.Error()
	for _, want := range []string{"could not record results: database or disk is full", "nothing more was sent",
		"3 of them could not be recorded", "possible duplicates", "/var/mail.db", "resume when fixed: mailout resume 'spring sale'"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}
