package outcome

// Classes lists every class, in the order of DESIGN.md's table.
var Classes = []Class{
	Delivered, DNSUnreachable, DNSNXDomain, NoMailServer, ConnectTimeout,
	ConnectRefused, NetworkUnreachable, TLSFailed, AuthRequired, AuthFailed,
	RelayDenied, SenderRejected, RecipientUnknown, MailboxFull, Greylisted,
	Temporary, RateLimited, ContentRejected, ProtocolError,
	ProhibitedDestination, RenderFailed, Permanent,
}
