package outcome

import "mailout/internal/route"

// Classes lists every class of the outcome taxonomy, delivered first.
var Classes = []Class{
	Delivered, DNSUnreachable, DNSNXDomain, NoMailServer, ConnectTimeout,
	ConnectRefused, NetworkUnreachable, TLSFailed, AuthRequired, AuthFailed,
	RelayDenied, SenderRejected, RecipientUnknown, MailboxFull, Greylisted,
	Temporary, RateLimited, ContentRejected, SenderUnauthenticated, ProtocolError,
	ProhibitedDestination, RenderFailed, DomainNotHosted, CrashLoop, Permanent,
}

// LocalTemporary lists the classes that are temporary and point at our own
// network or configuration on route (the local fault kindOf gives them):
// once the user fixed the cause, recipients deferred for them can go at
// once.
func LocalTemporary(r route.Route) []Class {
	var out []Class
	for _, c := range Classes {
		if k, local := kindOf(c, r); local && k == KindTemporary {
			out = append(out, c)
		}
	}
	return out
}
