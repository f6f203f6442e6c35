package smtpclient

import (
	"fmt"
)

// Error is a reply from the server that ended a command with a 4xx or 5xx
// code, or a protocol failure at a given command.
type Error struct {
	// Command is the SMTP command that got the reply: "connect" for the
	// greeting, "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BODY"
	// (the reply to the final ".") or "QUIT".
	Command string
	// Code is the basic reply code (RFC 5321 §4.2), 0 if none was read.
	Code int
	// Enhanced is the enhanced status code (RFC 3463) such as "5.1.1", or "".
	Enhanced string
	// Text is the reply text, all lines joined by "\n", without codes.
	Text string
	// Err is the underlying cause when the failure was not a server reply
	// (I/O error, timeout, malformed reply); nil for a proper reply.
	Err error
}

func (e *Error) Error() string {
	if e.Code == 0 {
		if e.Err != nil {
			return fmt.Sprintf("smtp %s: %v", e.Command, e.Err)
		}
		return fmt.Sprintf("smtp %s: %s", e.Command, e.Text)
	}
	if e.Enhanced != "" {
		return fmt.Sprintf("smtp %s: %d %s %s", e.Command, e.Code, e.Enhanced, e.Text)
	}
	return fmt.Sprintf("smtp %s: %d %s", e.Command, e.Code, e.Text)
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports a 4xx reply, or a failure without a reply.
func (e *Error) Temporary() bool { return e.Code == 0 || e.Code/100 == 4 }

// Permanent reports a 5xx reply.
func (e *Error) Permanent() bool { return e.Code/100 == 5 }
