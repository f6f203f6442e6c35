package smtpclient

import "testing"

// The named reply codes are the numbers of the RFCs, and their first digit
// makes an Error temporary or permanent (RFC 5321 §4.2.1).
func TestReplyCodes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		code, rfc int
		temporary bool
		permanent bool
	}{
		{"ready", CodeReady, 220, false, false},
		{"closing", CodeClosing, 221, false, false},
		{"auth succeeded", CodeAuthSucceeded, 235, false, false},
		{"ok", CodeOK, 250, false, false},
		{"auth continue", CodeAuthContinue, 334, false, false},
		{"start mail input", CodeStartMailInput, 354, false, false},
		{"service not available", CodeServiceNotAvailable, 421, true, false},
		{"mailbox unavailable, temporary", CodeMailboxBusy, 450, true, false},
		{"local error", CodeLocalError, 451, true, false},
		{"auth required", CodeAuthRequired, 530, false, true},
		{"auth credentials invalid", CodeAuthInvalid, 535, false, true},
		{"encryption required", CodeEncryptionRequired, 538, false, true},
		{"exceeded storage", CodeExceededStorage, 552, false, true},
		{"mailbox name not allowed", CodeMailboxNameNotAllowed, 553, false, true},
		{"transaction failed", CodeTransactionFailed, 554, false, true},
	} {
		e := &Error{Command: "MAIL", Code: tc.code}
		if tc.code != tc.rfc || e.Temporary() != tc.temporary || e.Permanent() != tc.permanent {
			t.Errorf("%s: code %d (temporary %v, permanent %v), want %d (%v, %v)",
				tc.name, tc.code, e.Temporary(), e.Permanent(), tc.rfc, tc.temporary, tc.permanent)
		}
	}
}
