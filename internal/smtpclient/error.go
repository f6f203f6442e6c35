package smtpclient

import (
	"errors"
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

// ErrAmbiguous is wrapped in the Err of a "BODY" Error when the whole
// message including the final "." was handed to the network but no proper
// reply was read (connection lost, timeout, cancellation, malformed reply).
// The server may have accepted the message: a retry may deliver it twice
// (RFC 5321 §3.8, RFC 1047).
var ErrAmbiguous = errors.New("no reply after the final \".\": the message may have been accepted")

// ErrProtocol is wrapped in the Err of an Error for a malformed or oversized
// server reply (RFC 5321 §4.2). The connection is closed afterwards.
var ErrProtocol = errors.New("malformed SMTP reply")

// ErrTLSHandshake is wrapped in the Err of a "STARTTLS" Error when the TLS
// handshake itself failed (also for implicit TLS). With TLSOpportunistic a
// caller may dial again with TLSNone (RFC 7435 opportunistic security).
var ErrTLSHandshake = errors.New("TLS handshake failed")

// Ambiguous reports whether the message may have been delivered although no
// final reply was seen; see ErrAmbiguous.
func (e *Error) Ambiguous() bool { return errors.Is(e.Err, ErrAmbiguous) }
