package spf

import (
	"net/url"
	"strconv"
	"strings"
)

// checkMacro checks a macro-string's syntax without expanding it
// (RFC 7208 §7.1), so a record with a bad macro is a permerror before
// anything is evaluated.
func checkMacro(s string) error {
	_, err := expandWith(s, true, func(byte) (string, error) { return "x", nil })
	return err
}

// expand expands a macro-string for the current domain (RFC 7208 §7);
// exp says it is an explanation string, where c, r and t are allowed too.
// A domain-spec longer than 253 octets loses labels on the left
// (RFC 7208 §7.3).
func (e *eval) expand(s, domain string, exp bool) (string, error) {
	out, err := expandWith(s, exp, func(letter byte) (string, error) {
		switch letter {
		case 's':
			return e.local + "@" + e.senderDomain, nil
		case 'l':
			return e.local, nil
		case 'o':
			return e.senderDomain, nil
		case 'd':
			return domain, nil
		case 'i':
			return dotted(e.c), nil
		case 'p':
			// RFC 7208 §5.5, §7.3: the validated name, else "unknown";
			// counted as a ptr (deprecated).
			e.ptr = true
			for _, n := range e.validatedNames() {
				if n == domain || strings.HasSuffix(n, "."+domain) {
					return n, nil
				}
			}
			if names := e.validatedNames(); len(names) > 0 {
				return names[0], nil
			}
			return "unknown", nil
		case 'v':
			if e.c.IP.Unmap().Is4() {
				return "in-addr", nil
			}
			return "ip6", nil
		case 'h':
			return e.c.HELO, nil
		case 'c':
			return e.c.IP.Unmap().String(), nil
		case 'r':
			return "unknown", nil
		case 't':
			return "0", nil
		}
		return "", permErr(ErrSyntax, "unknown macro letter %q", letter)
	})
	if err != nil {
		return "", err
	}
	if !exp {
		for len(out) > 253 {
			_, rest, ok := strings.Cut(out, ".")
			if !ok {
				break
			}
			out = rest
		}
	}
	return out, nil
}

// dotted is %{i}: dotted quad for IPv4, dot-separated nibbles for IPv6
// (RFC 7208 §7.3).
func dotted(c Check) string {
	ip := c.IP.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	b := ip.As16()
	var sb strings.Builder
	for i, x := range b {
		if i > 0 {
			sb.WriteByte('.')
		}
		sb.WriteByte("0123456789abcdef"[x>>4])
		sb.WriteByte('.')
		sb.WriteByte("0123456789abcdef"[x&15])
	}
	return sb.String()
}

// expandWith walks a macro-string; value gives each macro letter's value
// (lower case).
func expandWith(s string, exp bool, value func(byte) (string, error)) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if c < 0x21 || c > 0x7e {
				if !exp || c != ' ' {
					return "", permErr(ErrSyntax, "character %q in %q", c, s)
				}
			}
			sb.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", permErr(ErrSyntax, "%% at the end of %q", s)
		}
		i++
		switch s[i] {
		case '%':
			sb.WriteByte('%')
			continue
		case '_':
			sb.WriteByte(' ')
			continue
		case '-':
			sb.WriteString("%20")
			continue
		case '{':
		default:
			return "", permErr(ErrSyntax, "bad macro in %q", s)
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 2 {
			return "", permErr(ErrSyntax, "bad macro in %q", s)
		}
		body := s[i+1 : i+end]
		i += end
		letter := body[0]
		upper := letter >= 'A' && letter <= 'Z'
		if upper {
			letter += 'a' - 'A'
		}
		if !strings.ContainsRune("slodiphv", rune(letter)) && !(exp && strings.ContainsRune("crt", rune(letter))) {
			return "", permErr(ErrSyntax, "unknown macro letter %q in %q", body[0], s)
		}
		// transformers: *DIGIT ["r"], then delimiters (RFC 7208 §7.1).
		j := 1
		for j < len(body) && body[j] >= '0' && body[j] <= '9' {
			j++
		}
		keep := 0
		if j > 1 {
			n, err := strconv.Atoi(body[1:j])
			if err != nil || n == 0 {
				return "", permErr(ErrSyntax, "bad macro transformer in %q", s)
			}
			keep = n
		}
		reverse := false
		if j < len(body) && (body[j] == 'r' || body[j] == 'R') {
			reverse = true
			j++
		}
		delims := body[j:]
		if strings.Trim(delims, ".-+,/_=") != "" {
			return "", permErr(ErrSyntax, "bad macro delimiter in %q", s)
		}
		if delims == "" {
			delims = "."
		}
		v, err := value(letter)
		if err != nil {
			return "", err
		}
		parts := strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(delims, r) })
		if reverse {
			for a, b := 0, len(parts)-1; a < b; a, b = a+1, b-1 {
				parts[a], parts[b] = parts[b], parts[a]
			}
		}
		if keep > 0 && keep < len(parts) {
			parts = parts[len(parts)-keep:]
		}
		v = strings.Join(parts, ".")
		if upper {
			// RFC 7208 §7.3: upper-case letters URL-escape the value.
			v = strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
		}
		sb.WriteString(v)
	}
	return sb.String(), nil
}
