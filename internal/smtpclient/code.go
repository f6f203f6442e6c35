package smtpclient

// Reply codes that mailout acts on, by their meaning. Error.Code and
// Reply.Code are plain ints; these name the values compared with them.
const (
	// RFC 5321 §4.2.2, §4.2.3: positive replies.
	CodeReady          = 220 // <domain> Service ready (greeting; ready to start TLS, RFC 3207 §4)
	CodeClosing        = 221 // Service closing transmission channel (QUIT)
	CodeAuthSucceeded  = 235 // Authentication successful (RFC 4954 §6)
	CodeOK             = 250 // Requested mail action okay, completed
	CodeAuthContinue   = 334 // AUTH challenge, send the next response (RFC 4954 §4)
	CodeStartMailInput = 354 // Start mail input; end with <CRLF>.<CRLF>

	// RFC 5321 §4.2.2, §4.2.3: transient negative replies (4yz).
	CodeServiceNotAvailable = 421 // Service not available, closing transmission channel (RFC 5321 §3.8)
	CodeMailboxBusy         = 450 // Requested mail action not taken: mailbox unavailable (busy, greylisting)
	CodeLocalError          = 451 // Requested action aborted: local error in processing

	// Permanent negative replies (5yz).
	CodeAuthRequired          = 530 // Authentication required (RFC 4954 §6)
	CodeAuthInvalid           = 535 // Authentication credentials invalid (RFC 4954 §6)
	CodeEncryptionRequired    = 538 // Encryption required for requested authentication mechanism (RFC 4954 §6)
	CodeExceededStorage       = 552 // Requested mail action aborted: exceeded storage allocation (RFC 5321 §4.2.2; SIZE, RFC 1870)
	CodeMailboxNameNotAllowed = 553 // Requested action not taken: mailbox name not allowed
	CodeTransactionFailed     = 554 // Transaction failed
)
