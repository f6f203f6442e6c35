package addr

import (
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// ParseDomain validates a host or domain name (a recipient domain, a relay
// or MX host name) and returns it as a lower-case A-label name without a
// trailing dot, ready for DNS and SMTP. Unicode names are converted with the
// IDNA2008 lookup profile of UTS #46 (RFC 5891 §5); IP addresses, domain
// literals, ports, single-label names and names over the DNS limits are
// rejected with an *Error.
func ParseDomain(s string) (string, error) {
	if len(s) > MaxInput {
		return "", errorf(s, "domain too long: %d octets, max %d (RFC 5321 §4.5.3.1.2)", len(s), MaxDomain)
	}
	if r := checkText(s); r != "" {
		return "", errorf(s, "%s", r)
	}
	a, _, err := parseDomain(s)
	if err != nil {
		return "", err
	}
	return a, nil
}

// parseDomain does the work of ParseDomain for input that already passed
// checkText, and also returns the Unicode form for display.
func parseDomain(s string) (aLabel, uLabel string, _ *Error) {
	switch {
	case s == "":
		return "", "", errorf(s, "empty domain")
	case s[0] == '[':
		return "", "", errorf(s, "%s", reasonLiteral)
	case strings.IndexByte(s, ':') >= 0:
		return "", "", errorf(s, "%s", reasonPort)
	case strings.IndexByte(s, ' ') >= 0:
		return "", "", errorf(s, "domain contains a space")
	case s[0] == '.':
		return "", "", errorf(s, "domain starts with a dot")
	case s[len(s)-1] == '.':
		// A trailing dot (an absolute DNS name) is legal in DNS but not in
		// an address (RFC 5321 §4.1.2 Domain has no empty last label).
		return "", "", errorf(s, "domain ends with a dot")
	}

	if a, ok := plainASCII(s); ok {
		if r := checkDNSName(a); r != "" {
			return "", "", errorf(s, "%s", r)
		}
		return a, a, nil
	}

	// RFC 5891 §5 lookup: map (case folding, full-width forms), check the
	// labels (hyphens, joiners, bidi, STD3 letters-digits-hyphen) and
	// encode each non-ASCII label as xn--punycode. The profile is
	// read-only and shared by the package.
	a, err := idna.Lookup.ToASCII(s)
	if err != nil {
		e := errorf(s, "invalid domain name: %s (IDNA)", strings.TrimPrefix(err.Error(), "idna: "))
		e.Err = err
		return "", "", e
	}
	a = strings.ToLower(a)
	if r := checkDNSName(a); r != "" {
		return "", "", errorf(s, "%s", r)
	}
	u, err := idna.Display.ToUnicode(a)
	if err != nil {
		// Cannot happen for a name Lookup produced; fall back to the
		// A-label rather than fail a valid address on a display detail.
		u = a
	}
	return a, u, nil
}

// plainASCII returns s lower-cased when it is a name on which the IDNA
// lookup would do nothing but lower-case it: only ASCII letters, digits,
// hyphens and dots, no label with "--" in positions 3 and 4 (which covers
// "xn--" A-labels, validated by the slow path), no label starting or ending
// with a hyphen. That is most domains, and skips two IDNA passes per
// address on a large import. FuzzPlainASCII checks the equivalence.
func plainASCII(s string) (string, bool) {
	upper := false
	start := 0 // start of the current label
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			l := s[start:i]
			if l == "" || l[0] == '-' || l[len(l)-1] == '-' || len(l) >= 4 && l[2:4] == "--" {
				return "", false
			}
			start = i + 1
			continue
		}
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case 'A' <= c && c <= 'Z':
			upper = true
		default:
			return "", false
		}
	}
	if upper {
		s = strings.ToLower(s)
	}
	return s, true
}

// checkDNSName checks an A-label name against RFC 1035 §2.3.1 and §2.3.4 and
// the rules a mail domain needs in practice.
func checkDNSName(a string) string {
	if len(a) > MaxDomain {
		return "domain too long: " + strconv.Itoa(len(a)) + " octets, max " + strconv.Itoa(MaxDomain) + " (RFC 5321 §4.5.3.1.2)"
	}
	labels := strings.Split(a, ".")
	switch {
	case labels[0] == "":
		return "domain starts with a dot"
	case labels[len(labels)-1] == "":
		return "domain ends with a dot"
	}
	if len(labels) < 2 {
		return "domain needs a dot, like example.com: single-label names such as localhost are not allowed"
	}
	for _, l := range labels {
		if l == "" {
			return "domain has two dots in a row"
		}
		if len(l) > MaxLabel {
			return "domain label too long: " + strconv.Itoa(len(l)) + " octets, max " + strconv.Itoa(MaxLabel) + " (RFC 1035 §2.3.4)"
		}
		// RFC 1035 §2.3.1 / RFC 5321 §4.1.2 sub-domain: Let-dig [Ldh-str].
		// The STD3 rules of the lookup profile already enforce this; check
		// again because the whole sending path relies on it.
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "domain label starts or ends with a hyphen"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return "domain has a character that is not a letter, digit or hyphen"
			}
		}
	}
	// An all-numeric top-level label is an IP address written without
	// brackets, or a typo; no TLD is numeric (RFC 3696 §2).
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return "an IP address is not allowed for bulk sending: use the domain name (an IP address bypasses the MX lookup)"
	}
	return ""
}

// HostName checks the name of a host to connect to or to greet with (a
// relay host, the EHLO name) and returns it as SMTP and DNS use it:
// lower-case, Unicode labels as A-labels (RFC 5890, the IDNA2008 lookup
// profile), no trailing dot. Unlike ParseDomain it takes a single label
// (localhost, a host of the local network) and underscores, which real
// machine names have. An IP address is not a host name: callers check for
// one first.
func HostName(s string) (string, error) {
	if len(s) > MaxInput {
		return "", errorf(s, "host name too long: %d octets, max %d (RFC 1035 §2.3.4)", len(s), MaxDomain)
	}
	if r := checkText(s); r != "" {
		return "", errorf(s, "%s", r)
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return "", errorf(s, "empty host name")
	}
	if i := strings.IndexAny(name, " :[]/@\\"); i >= 0 {
		return "", errorf(s, "%q is not allowed in a host name", name[i])
	}
	if !isASCII(name) {
		a, err := idna.Lookup.ToASCII(name)
		if err != nil {
			e := errorf(s, "invalid host name: %s (IDNA)", strings.TrimPrefix(err.Error(), "idna: "))
			e.Err = err
			return "", e
		}
		name = a
	}
	name = strings.ToLower(name)
	if len(name) > MaxDomain {
		return "", errorf(s, "host name too long: %d octets, max %d (RFC 1035 §2.3.4)", len(name), MaxDomain)
	}
	for _, l := range strings.Split(name, ".") {
		switch {
		case l == "":
			return "", errorf(s, "host name has an empty label (two dots in a row, or a leading dot)")
		case len(l) > MaxLabel:
			return "", errorf(s, "host name label too long: %d octets, max %d (RFC 1035 §2.3.4)", len(l), MaxLabel)
		case l[0] == '-' || l[len(l)-1] == '-':
			return "", errorf(s, "host name label starts or ends with a hyphen")
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", errorf(s, "host name has a character that is not a letter, digit, hyphen or underscore")
			}
		}
	}
	return name, nil
}
