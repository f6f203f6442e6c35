package addr

import (
	"errors"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Address
		wire    string
		key     string
		utf8Loc bool
	}{
		{"plain", "bob@example.com", Address{"bob", "example.com", "example.com"}, "bob@example.com", "bob@example.com", false},
		{"plus address", "bob+news@example.com", Address{"bob+news", "example.com", "example.com"}, "bob+news@example.com", "bob+news@example.com", false},
		{"dots in local part", "first.last@example.com", Address{"first.last", "example.com", "example.com"}, "first.last@example.com", "first.last@example.com", false},
		{"case kept, domain lowered", "Bob.Smith@EXAMPLE.Com", Address{"Bob.Smith", "example.com", "example.com"}, "Bob.Smith@example.com", "bob.smith@example.com", false},
		{"spaces trimmed", "  bob@example.com \u00a0", Address{"bob", "example.com", "example.com"}, "bob@example.com", "bob@example.com", false},
		{"all atext specials", "!#$%&'*+-/=?^_`{|}~@example.com", Address{"!#$%&'*+-/=?^_`{|}~", "example.com", "example.com"}, "!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com", false},
		{"quoted with space", `"john doe"@example.com`, Address{"john doe", "example.com", "example.com"}, `"john doe"@example.com`, "john doe@example.com", false},
		{"quoted with at", `"info@"@example.com`, Address{"info@", "example.com", "example.com"}, `"info@"@example.com`, "info@@example.com", false},
		{"quoted with escaped quote", `"a\"b\\c"@example.com`, Address{`a"b\c`, "example.com", "example.com"}, `"a\"b\\c"@example.com`, `a"b\c@example.com`, false},
		{"needless quotes dropped", `"john"@example.com`, Address{"john", "example.com", "example.com"}, "john@example.com", "john@example.com", false},
		{"quoted double dot", `"a..b"@example.com`, Address{"a..b", "example.com", "example.com"}, `"a..b"@example.com`, "a..b@example.com", false},
		{"quoted comma and semicolon", `"a,b;c"@example.com`, Address{"a,b;c", "example.com", "example.com"}, `"a,b;c"@example.com`, "a,b;c@example.com", false},
		{"quoted angle bracket", `"a<b>"@example.com`, Address{"a<b>", "example.com", "example.com"}, `"a<b>"@example.com`, "a<b>@example.com", false},
		{"IDN domain", "bob@bücher.example", Address{"bob", "xn--bcher-kva.example", "bücher.example"}, "bob@xn--bcher-kva.example", "bob@xn--bcher-kva.example", false},
		{"IDN upper case", "bob@BÜCHER.example", Address{"bob", "xn--bcher-kva.example", "bücher.example"}, "bob@xn--bcher-kva.example", "bob@xn--bcher-kva.example", false},
		{"A-label domain", "bob@XN--BCHER-KVA.example", Address{"bob", "xn--bcher-kva.example", "bücher.example"}, "bob@xn--bcher-kva.example", "bob@xn--bcher-kva.example", false},
		{"UTF-8 local part", "δοκιμή@example.com", Address{"δοκιμή", "example.com", "example.com"}, "δοκιμή@example.com", "δοκιμή@example.com", true},
		{"UTF-8 local part case folded in key", "JOSÉ@example.com", Address{"JOSÉ", "example.com", "example.com"}, "JOSÉ@example.com", "josé@example.com", true},
		{"decomposed local part NFC in key", "jose\u0301@example.com", Address{"jose\u0301", "example.com", "example.com"}, "jose\u0301@example.com", "jos\u00e9@example.com", true},
		{"hyphen and digits in domain", "a@mail-1.example.co.uk", Address{"a", "mail-1.example.co.uk", "mail-1.example.co.uk"}, "a@mail-1.example.co.uk", "a@mail-1.example.co.uk", false},
		{"local part 64 octets", strings.Repeat("a", 64) + "@example.com", Address{strings.Repeat("a", 64), "example.com", "example.com"}, strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.wire {
				t.Errorf("String() = %q, want %q", s, tt.wire)
			}
			if k := got.Key(); k != tt.key {
				t.Errorf("Key() = %q, want %q", k, tt.key)
			}
			if u := got.NeedsSMTPUTF8(); u != tt.utf8Loc {
				t.Errorf("NeedsSMTPUTF8() = %v, want %v", u, tt.utf8Loc)
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Errorf("Parse(String()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	// A domain of 4 labels of 63 octets: 255 octets.
	longDomain := long(63) + "." + long(63) + "." + long(63) + "." + long(61) + "xy"
	tests := []struct {
		name   string
		in     string
		reason string // a phrase the user must see
	}{
		{"empty", "", "empty address"},
		{"only spaces", "   ", "empty address"},
		{"no at", "bob.example.com", "missing @"},
		{"no local part", "@example.com", "missing local part"},
		{"no domain", "bob@", "missing domain"},
		{"two ats", "a@b@example.com", "more than one @"},
		{"double dot", "a..b@example.com", "two dots in a row"},
		{"leading dot", ".bob@example.com", "starts with a dot"},
		{"trailing dot local", "bob.@example.com", "ends with a dot"},
		{"trailing dot domain", "bob@example.com.", "domain ends with a dot"},
		{"leading dot domain", "bob@.example.com", "domain starts with a dot"},
		{"double dot domain", "bob@example..com", "two dots in a row"},
		{"single label", "user@localhost", "needs a dot"},
		{"domain literal v4", "user@[1.2.3.4]", "not allowed for bulk sending"},
		{"domain literal v6", "user@[IPv6:::1]", "domain literals"},
		{"bare IP", "user@127.0.0.1", "IP address is not allowed"},
		{"port", "user@example.com:2025", "port"},
		{"display name", "Bob <b@example.com>", "put only the address in the email column"},
		{"quoted display name", `"Bob" <b@example.com>`, "put only the address in the email column"},
		{"angle only", "<b@example.com>", "put only the address in the email column"},
		{"comment", "bob(x)@example.com", "comments"},
		{"space in local", "bob smith@example.com", "contains a space"},
		{"space in domain", "bob@exa mple.com", "domain contains a space"},
		{"two addresses", "a@example.com,b@example.com", "one address per row"},
		{"CRLF injection", "a@b.example>\r\nRCPT TO:<x@y.example", "line break"},
		{"LF at end", "a@example.com\n", "line break"},
		{"CR in quoted", "\"a\r\nDATA\"@example.com", "line break"},
		{"NUL", "a\x00b@example.com", "NUL"},
		{"tab", "a\tb@example.com", "control character"},
		{"C1 control", "a\u0085b@example.com", "control character"},
		{"bidi override", "a\u202eb@example.com", "invisible formatting"},
		{"zero width space", "a\u200bb@example.com", "invisible formatting"},
		{"nbsp inside", "a\u00a0b@example.com", "unusual space"},
		{"private use", "a\ue000@example.com", "unusable character"},
		{"invalid UTF-8", "bob\xe9@example.com", "not valid UTF-8"},
		{"unterminated quote", `"john@example.com`, "unterminated"},
		{"partly quoted", `john"doe"@example.com`, "quotes must enclose"},
		{"text after quote", `"john"doe@example.com`, "after the quoted local part"},
		{"empty quoted", `""@example.com`, "empty local part"},
		{"bad escape", "\"a\\\u00e9\"@example.com", "backslash"},
		{"underscore domain", "bob@ex_ample.com", "invalid domain name"},
		{"hyphen label", "bob@-example.com", "invalid domain name"},
		{"bad punycode", "bob@xn--zz-.example", "invalid domain name"},
		{"ASCII punycode", "bob@xn--abc-.example", "invalid domain name"},
		{"local part 65", long(65) + "@example.com", "local part too long: 65 octets, max 64 (RFC 5321 §4.5.3.1.1)"},
		{"quoted local over 64 on the wire", `"` + long(62) + ` "@example.com`, "local part too long: 65 octets"},
		{"label 64", "bob@" + long(64) + ".com", "label too long: 64 octets, max 63"},
		{"domain 255", "b@" + longDomain, "domain too long: 255 octets"},
		{"address 255", long(64) + "@" + long(63) + "." + long(63) + "." + long(58) + ".com", "address too long: 255 octets, max 254 (RFC 5321 §4.5.3.1.3)"},
		{"input over cap", long(64) + "@" + strings.Repeat("a.", 200) + "com", "address too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error with %q", tt.in, got, tt.reason)
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("Parse(%q) error %T is not *addr.Error", tt.in, err)
			}
			if !strings.Contains(ae.Reason, tt.reason) {
				t.Errorf("Parse(%q) reason = %q, want it to contain %q", tt.in, ae.Reason, tt.reason)
			}
			if len(ae.Input) > MaxInput {
				t.Errorf("Error.Input is %d octets, want at most %d", len(ae.Input), MaxInput)
			}
			if strings.ContainsAny(ae.Error(), "\r\n\x00") {
				t.Errorf("Error() %q contains raw CR, LF or NUL", ae.Error())
			}
		})
	}
}

func TestParseDomain(t *testing.T) {
	tests := []struct {
		in, want, reason string
	}{
		{"Example.COM", "example.com", ""},
		{"smtp.bücher.example", "smtp.xn--bcher-kva.example", ""},
		{"ＥＸＡＭＰＬＥ.com", "example.com", ""}, // full-width forms mapped (UTS #46)
		{"例え.テスト", "xn--r8jz45g.xn--zckzah", ""},
		{"localhost", "", "needs a dot"},
		{"example.com.", "", "ends with a dot"},
		{"example.com:25", "", "port"},
		{"[10.0.0.5]", "", "domain literals"},
		{"10.0.0.5", "", "IP address"},
		{"exa\nmple.com", "", "line break"},
		{"a\u200d.example", "", "invisible formatting"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDomain(tt.in)
			if tt.reason == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParseDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || !strings.Contains(ae.Reason, tt.reason) {
				t.Fatalf("ParseDomain(%q) = %q, %v; want *Error with %q", tt.in, got, err, tt.reason)
			}
		})
	}
}

// TestKeyDedupe checks the de-duplication policy of Address.Key: case and
// IDNA form do not matter, +tags and dots in the local part do.
func TestKeyDedupe(t *testing.T) {
	same := [][]string{
		{"Bob@EXAMPLE.com", "bob@example.com", `"bob"@example.com`, `"Bob"@Example.Com`},
		{"bob@bücher.example", "bob@xn--bcher-kva.example", "BOB@BÜCHER.EXAMPLE"},
	}
	for _, group := range same {
		want := mustParse(t, group[0]).Key()
		for _, s := range group[1:] {
			if k := mustParse(t, s).Key(); k != want {
				t.Errorf("Key(%q) = %q, want %q like %q", s, k, want, group[0])
			}
		}
	}
	different := [][2]string{
		{"bob@example.com", "bob+news@example.com"},       // +tags not stripped
		{"bob.smith@example.com", "bobsmith@example.com"}, // dots not stripped
		{"bob@example.com", "bob@example.org"},
		{`"info@"@example.com`, "info@example.com"},
	}
	for _, p := range different {
		if a, b := mustParse(t, p[0]).Key(), mustParse(t, p[1]).Key(); a == b {
			t.Errorf("Key(%q) == Key(%q) = %q, want different", p[0], p[1], a)
		}
	}
}

func mustParse(t *testing.T, s string) Address {
	t.Helper()
	a, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return a
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"bob@example.com", `"john doe"@example.com`, `"info@"@example.com`, `"a\"b"@x.example`,
		"δοκιμή@bücher.example", "a..b@x.example", "Bob <b@x.example>", "user@[1.2.3.4]",
		"a@b.example>\r\nRCPT TO:<x@y>", "\"a\r\nDATA\"@b.example", "x@xn--bcher-kva.example",
		"u@example.com:25", "  bob@EXAMPLE.com  ", `"\\"@a.example`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason == "" {
				t.Fatalf("Parse(%q) error %v is not an *Error with a reason", s, err)
			}
			return
		}
		w := a.String()
		if strings.ContainsAny(w, "\r\n\x00") {
			t.Fatalf("Parse(%q).String() = %q contains CR, LF or NUL", s, w)
		}
		if len(w) > MaxAddress {
			t.Fatalf("Parse(%q).String() is %d octets, over %d", s, len(w), MaxAddress)
		}
		b, err := Parse(w)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its String() %q does not re-parse: %v", s, w, err)
		}
		if b != a {
			t.Fatalf("Parse(%q) = %+v, but Parse(String()) = %+v", s, a, b)
		}
		if b.Key() != a.Key() {
			t.Fatalf("keys differ after round trip: %q vs %q", a.Key(), b.Key())
		}
	})
}
