package addr

import (
	"strings"
	"testing"

	"golang.org/x/net/idna"
)

// FuzzPlainASCII checks that the fast path of parseDomain gives what the
// IDNA lookup profile gives.
func FuzzPlainASCII(f *testing.F) {
	for _, s := range []string{"example.com", "EXAMPLE.com", "ab--cd.example", "xn--bcher-kva.example", "-a.example", "a-.example", "a..b", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := plainASCII(s)
		if !ok {
			return
		}
		slow, err := idna.Lookup.ToASCII(s)
		if err != nil {
			t.Fatalf("plainASCII(%q) = %q, but IDNA lookup fails: %v", s, fast, err)
		}
		if strings.ToLower(slow) != fast {
			t.Fatalf("plainASCII(%q) = %q, IDNA lookup = %q", s, fast, slow)
		}
		if u, err := idna.Display.ToUnicode(fast); err != nil || u != fast {
			t.Fatalf("display form of %q = %q, %v; want it unchanged", fast, u, err)
		}
	})
}
