package outcome

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailout/internal/mx"
	"mailout/internal/route"
	"mailout/internal/smtpclient"
)

const (
	R = route.Relay
	D = route.Direct
)

func reply(cmd string, code int, enh, text string) error {
	return &smtpclient.Error{Command: cmd, Code: code, Enhanced: enh, Text: text}
}

func dialErr(errno syscall.Errno) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25},
		Err: &os.SyscallError{Syscall: "connect", Err: errno}}
}

func readErr(errno syscall.Errno) error {
	return &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: errno}}
}

// mxErr is a resolver error of internal/mx of the given kind.
func mxErr(kind mx.Failure) error { return &mx.Error{Domain: "example.org", Kind: kind} }

// realRefused dials a loopback port that nothing listens on, for the exact
// error the kernel and net package produce.
func realRefused(t *testing.T) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Skip("port was reused")
	}
	return err
}

// realTimeout is the error of a dial whose deadline has passed; nothing is
// sent on the network.
func realTimeout(t *testing.T) error {
	t.Helper()
	d := net.Dialer{Deadline: time.Now().Add(-time.Second)}
	_, err := d.Dial("tcp", "127.0.0.1:9")
	if err == nil {
		t.Fatal("dial with a past deadline succeeded")
	}
	return err
}

type row struct {
	name      string
	route     route.Route
	step      Step
	err       error
	class     Class
	kind      Kind
	local     bool
	ambiguous bool
}

const (
	done = KindDone
	tmp  = KindTemporary
	perm = KindPermanent
	run  = KindPermanentForRun
)

func rows(t *testing.T) []row {
	t.Helper()
	return []row{
		{"delivered", D, "", nil, Delivered, done, false, false},
		{"quit fails after 250", R, "", &smtpclient.Error{Command: "QUIT", Err: readErr(syscall.ECONNRESET)}, Delivered, done, false, false},

		// Postfix.
		{"postfix relay access denied", R, "", reply("RCPT", 554, "5.7.1", "<bob@example.org>: Relay access denied"), RelayDenied, run, true, false},
		{"postfix user unknown", D, "", reply("RCPT", 550, "5.1.1", "<nobody@example.org>: Recipient address rejected: User unknown in local recipient table"), RecipientUnknown, perm, false, false},
		{"postgrey greylisted", D, "", reply("RCPT", 450, "4.2.0", "<bob@example.org>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.org.html"), Greylisted, tmp, false, false},
		{"postfix must issue starttls", R, "", reply("MAIL", 530, "5.7.0", "Must issue a STARTTLS command first"), TLSFailed, tmp, true, false},
		{"postfix sasl failure", R, "", reply("AUTH", 535, "5.7.8", "Error: authentication failed: authentication failure"), AuthFailed, run, true, false},
		{"postfix rbl at rcpt", D, "", reply("RCPT", 554, "5.7.1", "Service unavailable; Client host [203.0.113.9] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.9"), SenderRejected, perm, true, false},
		{"postfix no reverse dns (4xx)", D, "", reply("RCPT", 450, "4.7.1", "Client host rejected: cannot find your hostname, [203.0.113.9]"), Temporary, tmp, true, false},
		{"postfix anvil too many connections", D, "", reply("connect", 421, "4.7.0", "mx.example.org Error: too many connections from 203.0.113.9"), RateLimited, tmp, false, false},
		{"postfix too many recipients", D, "", reply("RCPT", 452, "4.5.3", "Error: too many recipients"), Temporary, tmp, false, false},
		{"postfix message too big", D, "", reply("BODY", 552, "5.3.4", "Error: message file too big"), Permanent, perm, false, false},
		{"postfix sender login mismatch", R, "", reply("MAIL", 553, "5.7.1", "<spam@example.com>: Sender address rejected: not owned by user alice"), SenderRejected, perm, true, false},
		{"postfix sender domain not found (4xx)", D, "", reply("RCPT", 450, "4.1.8", "<a@nonexist.example>: Sender address rejected: Domain not found"), Temporary, tmp, false, false},
		{"rspamd spam at end of data", D, "", reply("BODY", 554, "5.7.1", "Spam message rejected"), ContentRejected, perm, false, false},
		{"postfix 4.7.1 try again later", D, "", reply("RCPT", 451, "4.7.1", "Service unavailable - try again later"), Greylisted, tmp, false, false},

		// Exim.
		{"exim unrouteable", D, "", reply("RCPT", 550, "", "Unrouteable address"), RecipientUnknown, perm, false, false},
		{"exim relay not permitted", R, "", reply("RCPT", 550, "", "relay not permitted"), RelayDenied, run, true, false},
		{"exim relay not permitted auth required", R, "", reply("RCPT", 550, "", "relay not permitted, authentication required"), RelayDenied, run, true, false},
		{"exim greylisted", D, "", reply("RCPT", 451, "4.7.1", "Greylisted, please try again later"), Greylisted, tmp, false, false},
		{"exim sender verify before recipient words", D, "", reply("RCPT", 550, "", "Verification failed for <alice@example.com>\nUnrouteable address\nSender verify failed"), SenderRejected, perm, true, false},
		{"exim virus", D, "", reply("BODY", 550, "", "This message contains a virus (Eicar-Test-Signature) and has been rejected"), ContentRejected, perm, false, false},
		{"exim temporary local problem", D, "", reply("RCPT", 451, "", "Temporary local problem - please try later"), Temporary, tmp, false, false},
		{"exim bad auth", R, "", reply("AUTH", 535, "", "Incorrect authentication data"), AuthFailed, run, true, false},
		{"exim auth required at mail", R, "", reply("MAIL", 550, "", "Authentication required"), AuthRequired, run, true, false},

		// Gmail.
		{"gmail no such user", D, "", reply("RCPT", 550, "5.1.1", "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. Learn more at https://support.google.com/mail/?p=NoSuchUser"), RecipientUnknown, perm, false, false},
		{"gmail over quota temp", D, "", reply("RCPT", 452, "4.2.2", "The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp"), MailboxFull, tmp, false, false},
		{"gmail over quota and inactive", D, "", reply("RCPT", 552, "5.2.2", "The email account that you tried to reach is over quota and inactive."), MailboxFull, tmp, false, false},
		{"gmail 4.7.28 rate limited", D, "", reply("BODY", 421, "4.7.28", "[203.0.113.9] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited."), RateLimited, tmp, false, false},
		// Sender authentication (RFC 7372 §3): our DNS, not the recipient
		// nor the content: retried, a local fault, never a suppression.
		{"gmail dmarc 5.7.26", D, "", reply("BODY", 550, "5.7.26", "This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM."), SenderUnauthenticated, tmp, true, false},
		{"gmail dmarc policy 5.7.26", D, "", reply("BODY", 550, "5.7.26", "Unauthenticated email from example.com is not accepted due to domain's DMARC policy. Please contact the administrator of example.com domain if this was a legitimate mail."), SenderUnauthenticated, tmp, true, false},
		{"gmail rate limited unauthenticated 4.7.26", D, "", reply("BODY", 421, "4.7.26", "This mail has been rate limited because it is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM."), SenderUnauthenticated, tmp, true, false},
		{"microsoft 5.7.515 authentication level", D, "", reply("BODY", 550, "5.7.515", "Access denied, sending domain example.com doesn't meet the required authentication level."), SenderUnauthenticated, tmp, true, false},
		{"microsoft 5.7.509 dmarc reject", D, "", reply("BODY", 550, "5.7.509", "Access denied, sending domain example.com does not pass DMARC verification and has a DMARC policy of reject."), SenderUnauthenticated, tmp, true, false},
		{"policyd-spf at RCPT, not an unknown recipient", D, "", reply("RCPT", 550, "5.7.23", "<ana@example.org>: Recipient address rejected: Message rejected due to: SPF fail - not authorized."), SenderUnauthenticated, tmp, true, false},
		{"spf fail in words only", D, "", reply("RCPT", 550, "", "Recipient address rejected: Message rejected due to: SPF fail - not authorized."), SenderUnauthenticated, tmp, true, false},
		{"reverse dns 5.7.25", D, "", reply("RCPT", 550, "5.7.25", "The IP address sending this message does not have a PTR record setup."), SenderUnauthenticated, tmp, true, false},
		{"relay checks our dmarc", R, "", reply("BODY", 550, "5.7.26", "Unauthenticated email from example.com is not accepted due to domain's DMARC policy."), SenderUnauthenticated, tmp, true, false},
		{"relay wants AUTH in words at MAIL", R, "", reply("MAIL", 550, "5.7.1", "Client is unauthenticated"), AuthRequired, run, true, false},
		{"gmail likely unsolicited", D, "", reply("BODY", 550, "5.7.1", "[203.0.113.9] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked."), ContentRejected, perm, false, false},
		{"gmail ip not authorized directly", D, "", reply("RCPT", 550, "5.7.1", "[203.0.113.9] The IP you're using to send mail is not authorized to send email directly to our servers. Please use the SMTP relay at your service provider instead."), SenderRejected, perm, true, false},
		{"gmail auth required", R, "", reply("MAIL", 530, "5.7.0", "Authentication Required. For more information, go to https://support.google.com/mail/?p=WantAuthError"), AuthRequired, run, true, false},
		{"gmail bad credentials", R, "", reply("AUTH", 535, "5.7.8", "Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials"), AuthFailed, run, true, false},
		{"gmail app password", R, "", reply("AUTH", 534, "5.7.9", "Application-specific password required."), AuthFailed, run, true, false},
		{"gmail receiving at a rate", D, "", reply("RCPT", 450, "4.2.1", "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered."), RateLimited, tmp, false, false},
		{"gmail daily sending limit", R, "", reply("MAIL", 550, "5.4.5", "Daily user sending limit exceeded."), RateLimited, tmp, false, false},
		{"gmail account disabled", D, "", reply("RCPT", 550, "5.2.1", "The email account that you tried to reach is disabled."), RecipientUnknown, perm, false, false},
		{"gmail try again later at ehlo", D, "", reply("EHLO", 421, "4.7.0", "Try again later, closing connection. (EHLO)"), RateLimited, tmp, false, false},
		{"starttls not available", D, "", reply("STARTTLS", 454, "4.7.0", "TLS not available due to local problem"), TLSFailed, tmp, true, false},

		// Outlook / Microsoft 365.
		{"outlook spamhaus at rcpt", D, "", reply("RCPT", 550, "5.7.1", "Service unavailable, Client host [203.0.113.9] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/203.0.113.9 (AS3130)."), SenderRejected, perm, true, false},
		{"outlook spamhaus at mail", D, "", reply("MAIL", 550, "5.7.1", "Service unavailable, Client host [203.0.113.9] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/203.0.113.9 (AS3130)."), SenderRejected, perm, true, false},
		{"outlook mailbox unavailable", D, "", reply("RCPT", 550, "5.5.0", "Requested action not taken: mailbox unavailable (S2017062302). [AM4PEPF00027A5F.eurprd04.prod.outlook.com]"), Permanent, perm, false, false},
		{"m365 dbeb access denied", D, "", reply("RCPT", 550, "5.4.1", "Recipient address rejected: Access denied. AS(201806281) [BN8NAM11FT066.eop-nam11.prod.protection.outlook.com]"), RecipientUnknown, perm, false, false},
		{"m365 client not authenticated", R, "", reply("MAIL", 530, "5.7.57", "Client not authenticated to send mail. [DM6PR02CA0047.namprd02.prod.outlook.com]"), AuthRequired, run, true, false},
		{"m365 smtp auth disabled", R, "", reply("AUTH", 535, "5.7.139", "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."), AuthFailed, run, true, false},
		{"m365 auth unsuccessful", R, "", reply("AUTH", 535, "5.7.3", "Authentication unsuccessful [SN4PR0501CA0054.namprd05.prod.outlook.com]"), AuthFailed, run, true, false},
		{"m365 send as denied", R, "", reply("BODY", 550, "5.7.60", "SMTP; Client does not have permissions to send as this sender"), SenderRejected, perm, true, false},
		{"outlook ip reputation rate limited", D, "", reply("RCPT", 451, "4.7.650", "The mail server [203.0.113.9] has been temporarily rate limited due to IP reputation."), RateLimited, tmp, false, false},
		{"outlook server busy", D, "", reply("RCPT", 451, "4.7.500", "Server busy. Please try again later from [203.0.113.9]. (S77714) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]"), RateLimited, tmp, false, false},
		{"m365 tenant attribution relay denied", R, "", reply("RCPT", 550, "5.7.64", "TenantAttribution; Relay Access Denied [SN1NAM02FT012.eop-nam02.prod.protection.outlook.com]"), RelayDenied, run, true, false},
		{"outlook banned sending ip", D, "", reply("RCPT", 550, "5.7.606", "Access denied, banned sending IP [203.0.113.9]. To request removal from this list please visit https://sender.office.com/ and follow the directions."), SenderRejected, perm, true, false},
		{"m365 too many recipients", D, "", reply("RCPT", 452, "4.5.3", "Too many recipients (AS971106)"), Temporary, tmp, false, false},
		{"exchange quota exceeded at end of data", D, "", reply("BODY", 554, "5.2.2", "mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded"), MailboxFull, tmp, false, false},
		{"exchange recipient not found", D, "", reply("RCPT", 550, "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"), RecipientUnknown, perm, false, false},

		// Yahoo.
		{"yahoo TSS04", D, "", reply("MAIL", 421, "4.7.0", "[TSS04] Messages from 203.0.113.9 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"), RateLimited, tmp, false, false},
		{"yahoo TS02", D, "", reply("MAIL", 421, "4.7.0", "[TS02] Messages from 203.0.113.9 temporarily deferred - 4.16.56.1; see https://postmaster.yahooinc.com/error-codes"), RateLimited, tmp, false, false},
		{"yahoo BL21 at greeting, direct", D, "", reply("connect", 553, "5.7.1", "[BL21] Connections will not be accepted from 203.0.113.9, because the ip is in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes"), Temporary, tmp, true, false},
		{"yahoo policy reasons", D, "", reply("BODY", 554, "5.7.9", "Message not accepted for policy reasons.  See https://help.yahoo.com/kb/postmaster/SLN7253.html"), ContentRejected, perm, false, false},
		{"yahoo no account", D, "", reply("BODY", 554, "", "delivery error: dd This user doesn't have a yahoo.com account (nobody@yahoo.com) [0] - mta1234.mail.gq1.yahoo.com"), RecipientUnknown, perm, false, false},
		{"yahoo mailbox disabled", D, "", reply("BODY", 554, "", "delivery error: dd Sorry your message to nobody@yahoo.com cannot be delivered. This mailbox is disabled (554.30). - mta1.mail.bf1.yahoo.com"), RecipientUnknown, perm, false, false},
		{"yahoo too many bad auth", R, "", reply("AUTH", 535, "5.7.0", "(#AUTH005) Too many bad auth attempts."), AuthFailed, run, true, false},

		// Sendmail.
		{"sendmail user unknown", D, "", reply("RCPT", 550, "5.1.1", "<nobody@example.org>... User unknown"), RecipientUnknown, perm, false, false},
		{"sendmail relaying denied", R, "", reply("RCPT", 550, "5.7.1", "<bob@example.net>... Relaying denied. Proper authentication required."), RelayDenied, run, true, false},
		{"sendmail sender domain missing", D, "", reply("MAIL", 553, "5.1.8", "<alice@nonexistent.example>... Domain of sender address alice@nonexistent.example does not exist"), SenderRejected, perm, true, false},
		{"sendmail connection rate", D, "", reply("connect", 421, "4.3.2", "Connection rate limit exceeded."), RateLimited, tmp, false, false},
		{"sendmail insufficient disk", D, "", reply("MAIL", 452, "4.4.5", "Insufficient disk space; try again later"), Temporary, tmp, false, false},
		{"sendmail 554 greeting direct: this host refuses", D, "", reply("connect", 554, "", "mail.example.org ESMTP not accepting messages"), Temporary, tmp, false, false},
		{"sendmail 554 greeting relay: relay problem", R, "", reply("connect", 554, "", "mail.example.org ESMTP not accepting messages"), RelayDenied, run, true, false},
		{"other 5xx at data", D, "", reply("DATA", 554, "5.5.1", "Error: no valid recipients"), Permanent, perm, false, false},
		{"plain 421 shutting down", D, "", reply("RCPT", 421, "4.3.2", "Service shutting down"), Temporary, tmp, false, false},
		{"wrapped reply", R, "", fmt.Errorf("relay smtp.example.com: %w", reply("AUTH", 535, "5.7.8", "bad")), AuthFailed, run, true, false},

		// Network errors.
		{"real connect refused, relay", R, StepConnect, realRefused(t), ConnectRefused, tmp, true, false},
		{"real connect refused, direct", D, StepConnect, realRefused(t), ConnectRefused, tmp, false, false},
		{"real dial timeout, direct", D, StepConnect, realTimeout(t), ConnectTimeout, tmp, true, false},
		{"ETIMEDOUT syscall", D, StepConnect, dialErr(syscall.ETIMEDOUT), ConnectTimeout, tmp, true, false},
		{"context deadline at connect", R, StepConnect, fmt.Errorf("dial: %w", context.DeadlineExceeded), ConnectTimeout, tmp, true, false},
		{"ENETUNREACH", D, StepConnect, dialErr(syscall.ENETUNREACH), NetworkUnreachable, tmp, true, false},
		{"EHOSTUNREACH", R, StepConnect, dialErr(syscall.EHOSTUNREACH), NetworkUnreachable, tmp, true, false},
		{"reset mid-session", D, "", &smtpclient.Error{Command: "RCPT", Err: readErr(syscall.ECONNRESET)}, ProtocolError, tmp, false, false},
		{"banner stall", D, "", &smtpclient.Error{Command: "connect", Err: &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}}, ProtocolError, tmp, false, false},
		{"dial refused inside smtpclient error", R, "", &smtpclient.Error{Command: "connect", Err: dialErr(syscall.ECONNREFUSED)}, ConnectRefused, tmp, true, false},
		{"dial timeout inside smtpclient error", D, "", &smtpclient.Error{Command: "connect", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}}, ConnectTimeout, tmp, true, false},
		{"closed after final dot (ambiguous)", D, "", &smtpclient.Error{Command: "BODY", Err: fmt.Errorf("%w: %w", smtpclient.ErrAmbiguous, io.EOF)}, ProtocolError, tmp, false, true},
		{"timeout after final dot (ambiguous)", R, "", &smtpclient.Error{Command: "BODY", Err: fmt.Errorf("%w: %w", smtpclient.ErrAmbiguous, os.ErrDeadlineExceeded)}, ProtocolError, tmp, false, true},
		{"cancelled after final dot (ambiguous)", R, "", &smtpclient.Error{Command: "BODY", Err: fmt.Errorf("%w: %w", smtpclient.ErrAmbiguous, context.Canceled)}, ProtocolError, tmp, false, true},
		{"reset while writing the body (not ambiguous)", D, "", &smtpclient.Error{Command: "BODY", Err: readErr(syscall.ECONNRESET)}, ProtocolError, tmp, false, false},
		{"malformed reply", D, "", &smtpclient.Error{Command: "MAIL", Err: smtpclient.ErrProtocol, Text: `malformed reply "2500 ok"`}, ProtocolError, tmp, false, false},
		{"malformed greeting", D, "", &smtpclient.Error{Command: "connect", Err: smtpclient.ErrProtocol}, ProtocolError, tmp, false, false},
		{"tls handshake failed at starttls", D, "", &smtpclient.Error{Command: "STARTTLS", Err: fmt.Errorf("%w: %w", smtpclient.ErrTLSHandshake, io.EOF)}, TLSFailed, tmp, true, false},
		{"eof mid-data", D, "", &smtpclient.Error{Command: "DATA", Err: io.ErrUnexpectedEOF}, ProtocolError, tmp, false, false},
		{"size over the announced SIZE, at MAIL", D, "", reply("MAIL", 552, "5.3.4", "message size 40000000 exceeds the server's limit of 35882577 (RFC 1870)"), Permanent, perm, false, false},
		{"no SMTPUTF8 at MAIL", D, "", reply("MAIL", 553, "5.6.7", "the server does not support SMTPUTF8"), Permanent, perm, false, false},
		{"no usable auth mechanism", R, "", &smtpclient.Error{Command: "AUTH", Text: `server offers no supported AUTH mechanism (offered: "GSSAPI")`}, AuthFailed, run, true, false},
		{"credentials not sent without tls", R, "", &smtpclient.Error{Command: "AUTH", Text: "refusing to send credentials without TLS"}, AuthFailed, run, true, false},
		{"bad sender address (client side)", R, "", &smtpclient.Error{Command: "MAIL", Text: "address contains CR or LF"}, SenderRejected, perm, true, false},
		{"bad recipient address (client side)", D, "", &smtpclient.Error{Command: "RCPT", Text: "address contains CR or LF"}, Permanent, perm, false, false},
		{"cancelled", R, StepMail, context.Canceled, Temporary, tmp, false, false},

		// TLS.
		{"starttls unknown authority", R, "", &smtpclient.Error{Command: "STARTTLS", Err: x509.UnknownAuthorityError{}}, TLSFailed, tmp, true, false},
		{"hostname mismatch", R, StepTLS, x509.HostnameError{Certificate: &x509.Certificate{}, Host: "smtp.example.com"}, TLSFailed, tmp, true, false},
		{"expired certificate", D, StepTLS, x509.CertificateInvalidError{Cert: &x509.Certificate{}, Reason: x509.Expired}, TLSFailed, tmp, true, false},
		{"not tls (record header)", R, StepTLS, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, TLSFailed, tmp, true, false},
		{"verification error", R, StepTLS, &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, TLSFailed, tmp, true, false},
		{"handshake alert", D, StepTLS, fmt.Errorf("handshake: %w", tls.AlertError(40)), TLSFailed, tmp, true, false},

		// DNS.
		{"net dns not found, direct", D, StepResolve, &net.DNSError{Err: "no such host", Name: "example.invalid", IsNotFound: true}, DNSNXDomain, perm, false, false},
		{"net dns not found, relay host", R, StepResolve, &net.DNSError{Err: "no such host", Name: "smtp.exmaple.com", IsNotFound: true}, DNSNXDomain, run, true, false},
		{"net dns timeout", D, StepResolve, &net.DNSError{Err: "i/o timeout", Name: "example.org", IsTimeout: true}, DNSUnreachable, tmp, true, false},
		{"net dns temporary", R, StepResolve, &net.DNSError{Err: "server misbehaving", Name: "smtp.example.org", IsTemporary: true}, DNSUnreachable, tmp, true, false},
		{"mx timeout", D, StepResolve, mxErr("timeout"), DNSUnreachable, tmp, true, false},
		{"mx refused", D, StepResolve, fmt.Errorf("resolve: %w", mxErr("refused")), DNSUnreachable, tmp, true, false},
		{"mx servfail", D, StepResolve, mxErr("servfail"), Temporary, tmp, false, false},
		{"mx nxdomain", D, StepResolve, mxErr("nxdomain"), DNSNXDomain, perm, false, false},
		{"mx nxdomain relay", R, StepResolve, mxErr("nxdomain"), DNSNXDomain, run, true, false},
		{"mx hosts without address", D, StepResolve, mxErr("mx-no-address"), Temporary, tmp, false, false},
		{"mx nodata relay host", R, StepResolve, mxErr("nodata"), DNSNXDomain, run, true, false},
		{"mx nodata", D, StepResolve, mxErr("nodata"), NoMailServer, perm, false, false},
		{"mx null mx", D, StepResolve, mxErr("null-mx"), NoMailServer, perm, false, false},
		{"mx prohibited", D, StepResolve, mxErr("prohibited"), ProhibitedDestination, perm, false, false},
	}
}

// mxRefusals are replies that mean "this server does not take mail for
// that domain from you": from the relay account's own server they stop the
// route (credentials or relay settings are wrong); from a recipient
// domain's MX they fail that recipient only — the domain's MX record is
// stale or the domain abandoned.
var mxRefusals = []struct {
	name    string
	err     error
	onRelay Class
}{
	{"postfix relay access denied", reply("RCPT", 554, "5.7.1", "<bob@stale.example>: Relay access denied"), RelayDenied},
	{"postfix relay access denied, 550", reply("RCPT", 550, "5.7.1", "<bob@stale.example>: Relay access denied"), RelayDenied},
	{"exim relay not permitted", reply("RCPT", 550, "", "relay not permitted"), RelayDenied},
	{"sendmail relaying denied", reply("RCPT", 550, "5.7.1", "<bob@stale.example>... Relaying denied. Proper authentication required."), RelayDenied},
	{"m365 tenant attribution", reply("RCPT", 550, "5.7.64", "TenantAttribution; Relay Access Denied [SN1NAM02FT012.eop-nam02.prod.protection.outlook.com]"), RelayDenied},
	{"530 authentication required at rcpt", reply("RCPT", 530, "5.7.0", "Authentication required"), AuthRequired},
	{"530 authentication required at mail", reply("MAIL", 530, "5.7.0", "Authentication Required."), AuthRequired},
	{"m365 client not authenticated at mail", reply("MAIL", 530, "5.7.57", "Client not authenticated to send mail."), AuthRequired},
	{"exim auth required at mail", reply("MAIL", 550, "", "Authentication required"), AuthRequired},
	{"535 at rcpt", reply("RCPT", 535, "5.7.8", "Authentication credentials invalid"), AuthFailed},
}

// TestMXRefusalDependsOnRoute: the same replies, relay route and direct
// route.
func TestMXRefusalDependsOnRoute(t *testing.T) {
	for _, tc := range mxRefusals {
		t.Run(tc.name, func(t *testing.T) {
			relay := Classify(Attempt{Route: R, Host: "smtp.provider.example", Port: 587, Err: tc.err})
			if relay.Class != tc.onRelay || relay.Kind != KindPermanentForRun || !relay.LocalFault {
				t.Errorf("relay: class=%s kind=%s local=%v; want %s %s local (the account's server stops the route)",
					relay.Class, relay.Kind, relay.LocalFault, tc.onRelay, KindPermanentForRun)
			}
			direct := Classify(Attempt{Route: D, Host: "mx.stale.example", Port: 25, Err: tc.err})
			if direct.Class != DomainNotHosted || direct.Kind != KindPermanent || direct.LocalFault {
				t.Errorf("direct: class=%s kind=%s local=%v (%s); want %s %s, not a local fault (one recipient's domain)",
					direct.Class, direct.Kind, direct.LocalFault, direct.Reason, DomainNotHosted, KindPermanent)
			}
			var se *smtpclient.Error
			errors.As(tc.err, &se)
			if direct.Code != se.Code || direct.Enhanced != se.Enhanced || direct.Text != se.Text || direct.Host != "mx.stale.example" {
				t.Errorf("direct: reply or host not kept: %d %q %q at %q", direct.Code, direct.Enhanced, direct.Text, direct.Host)
			}
		})
	}
	for lang, want := range map[string]string{
		"en": "MX record is probably stale",
		"es": "registro MX probablemente está desactualizado",
	} {
		if got := Advice(DomainNotHosted, D, lang); !strings.Contains(got, want) {
			t.Errorf("advice (%s) %q does not say %q", lang, got, want)
		}
	}
	if slices.Contains(LocalTemporary(D), DomainNotHosted) {
		t.Error("domain-not-hosted is listed as a local fault")
	}
}

func TestClassify(t *testing.T) {
	rs := rows(t)
	if len(rs) < 60 {
		t.Fatalf("only %d rows", len(rs))
	}
	for _, tc := range rs {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(Attempt{Route: tc.route, Step: tc.step, Host: "mx.example.org", Port: 25, Err: tc.err})
			if got.Class != tc.class || got.Kind != tc.kind || got.LocalFault != tc.local || got.Ambiguous != tc.ambiguous {
				t.Errorf("got class=%s kind=%s local=%v ambiguous=%v (%s); want class=%s kind=%s local=%v ambiguous=%v",
					got.Class, got.Kind, got.LocalFault, got.Ambiguous, got.Reason, tc.class, tc.kind, tc.local, tc.ambiguous)
			}
			if got.Reason == "" {
				t.Error("empty Reason")
			}
			if got.Host != "mx.example.org" {
				t.Errorf("Host = %q", got.Host)
			}
			if tc.err != nil && got.Class != Delivered && got.Step == "" {
				t.Error("empty Step for a failure")
			}
			var se *smtpclient.Error
			if errors.As(tc.err, &se) && se.Code != 0 {
				if got.Code != se.Code || got.Enhanced != se.Enhanced || got.Text != se.Text {
					t.Errorf("reply not copied: %d %q %q", got.Code, got.Enhanced, got.Text)
				}
			}
		})
	}
}

func TestClassifyStepFromCommand(t *testing.T) {
	for cmd, want := range map[string]Step{
		"connect": StepGreeting, "EHLO": StepEHLO, "STARTTLS": StepTLS, "AUTH": StepAuth,
		"MAIL": StepMail, "RCPT": StepRcpt, "DATA": StepData, "BODY": StepBody,
	} {
		got := Classify(Attempt{Route: D, Err: reply(cmd, 451, "", "x")})
		if got.Step != want {
			t.Errorf("%s: step %q, want %q", cmd, got.Step, want)
		}
	}
}

func TestAdviceEveryClassRouteLang(t *testing.T) {
	for _, c := range Classes {
		for _, route := range []route.Route{R, D} {
			en := Advice(c, route, "en")
			es := Advice(c, route, "es")
			if en == "" || es == "" {
				t.Errorf("%s/%s: empty advice", c, route)
			}
			if en == es {
				t.Errorf("%s/%s: es text equals en", c, route)
			}
			if generic := Advice("no-such-class", route, "en"); c != "" && en == generic {
				t.Errorf("%s/%s: falls back to the generic text", c, route)
			}
		}
	}
	if Advice(AuthFailed, R, "fr") != Advice(AuthFailed, R, "en") {
		t.Error("unknown language does not give English")
	}
	want := "Port 25 looks blocked — by a firewall, an antivirus, your gateway or your ISP. Allow it, or send through your provider's SMTP server (--route relay)."
	if got := Advice(ConnectTimeout, D, "en"); got != want {
		t.Errorf("connect-timeout direct: %q", got)
	}
}

func TestKindTableCoversEveryClass(t *testing.T) {
	for _, c := range Classes {
		for _, route := range []route.Route{R, D} {
			k, _ := kindOf(c, route)
			if k == "" {
				t.Errorf("%s: no kind", c)
			}
		}
	}
}

func FuzzClassifyReply(f *testing.F) {
	for _, s := range []string{"RCPT|550|5.1.1|User unknown", "connect|421|4.7.0|[TSS04] deferred", "BODY|554||dd This user doesn't have"} {
		f.Add(s, 550)
	}
	f.Fuzz(func(t *testing.T, text string, code int) {
		for _, cmd := range []string{"connect", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "BODY"} {
			r := Classify(Attempt{Route: D, Err: reply(cmd, code, "5.7.1", text)})
			if r.Class == "" || r.Kind == "" || r.Reason == "" {
				t.Fatalf("incomplete result %+v", r)
			}
		}
	})
}

func TestLocalTemporary(t *testing.T) {
	for r, want := range map[route.Route][]Class{
		route.Relay:  {DNSUnreachable, ConnectTimeout, ConnectRefused, NetworkUnreachable, TLSFailed, SenderUnauthenticated},
		route.Direct: {DNSUnreachable, ConnectTimeout, NetworkUnreachable, TLSFailed, SenderUnauthenticated},
	} {
		if got := LocalTemporary(r); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", r, got, want)
		}
	}
}
