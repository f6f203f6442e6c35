package outcome

// Classes lists every class, in the order of DESIGN.md's table.
var Classes = []Class{
	Delivered, DNSUnreachable, DNSNXDomain, NoMailServer, ConnectTimeout,
	ConnectRefused, NetworkUnreachable, TLSFailed, AuthRequired, AuthFailed,
	RelayDenied, SenderRejected, RecipientUnknown, MailboxFull, Greylisted,
	Temporary, RateLimited, ContentRejected, ProtocolError,
	ProhibitedDestination, RenderFailed, DomainNotHosted, CrashLoop, Permanent,
}

// LocalTemporary lists the classes that are temporary and point at our own
// network or configuration on route (DESIGN.md's "local fault?" column):
// once the user fixed the cause, recipients deferred for them can go at
// once.
func LocalTemporary(route string) []Class {
	var out []Class
	for _, c := range Classes {
		if k, local := kindOf(c, route); local && k == KindTemporary {
			out = append(out, c)
		}
	}
	return out
}
